// Money: a double-entry ledger (accounts, transactions, entries), the payments that top wallets
// up, withdrawal requests, and idempotency keys for every money-moving request.
// Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // One account per wallet, escrowed visit, provider payable, withdrawal hold; one for platform
  // revenue and one for the outside world. A balance is the sum of the account's entries.
  await db.schema
    .createTable("ledger_accounts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("owner_id", "text")
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("ledger_transactions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("reference_type", "text")
    .addColumn("reference_id", "text")
    .addColumn("resident_id", "text")
    .addColumn("description", "text", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("ledger_transactions_reference_idx")
    .on("ledger_transactions")
    .columns(["reference_type", "reference_id"])
    .execute();

  await db.schema
    .createTable("ledger_entries")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("transaction_id", "text", (c) => c.notNull().references("ledger_transactions.id"))
    .addColumn("account_id", "text", (c) => c.notNull().references("ledger_accounts.id"))
    .addColumn("amount", "bigint", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("ledger_entries_account_idx")
    .on("ledger_entries")
    .columns(["account_id", "created_at"])
    .execute();
  await db.schema
    .createIndex("ledger_entries_transaction_idx")
    .on("ledger_entries")
    .column("transaction_id")
    .execute();

  // A top-up: recorded by an operator (cash, bank transfer) or confirmed by the gateway's webhook.
  await db.schema
    .createTable("payments")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("payer_user_id", "text", (c) => c.notNull().references("users.id"))
    .addColumn("method", "text", (c) => c.notNull())
    .addColumn("amount", "bigint", (c) => c.notNull())
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("reference", "text")
    .addColumn("gateway_event_id", "text", (c) => c.unique())
    .addColumn("transaction_id", "text", (c) => c.references("ledger_transactions.id"))
    .addColumn("recorded_by", "text", (c) => c.references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("completed_at", "text")
    .execute();
  await db.schema
    .createIndex("payments_resident_idx")
    .on("payments")
    .columns(["resident_id", "created_at"])
    .execute();

  await db.schema
    .createTable("withdrawals")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("requested_by", "text", (c) => c.notNull().references("users.id"))
    .addColumn("amount", "bigint", (c) => c.notNull())
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("reason", "text")
    .addColumn("decided_by", "text", (c) => c.references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("decided_at", "text")
    .execute();
  await db.schema
    .createIndex("withdrawals_status_idx")
    .on("withdrawals")
    .columns(["status", "created_at"])
    .execute();

  // A money-moving request's key and the answer it got, committed with the money it moved.
  await db.schema
    .createTable("idempotency_keys")
    .addColumn("scope", "text", (c) => c.notNull())
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("request_hash", "text", (c) => c.notNull())
    .addColumn("response_status", "integer", (c) => c.notNull())
    .addColumn("response_body", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("idempotency_keys_pk", ["scope", "key"])
    .execute();
  // Old keys are pruned after a while; this finds them.
  await db.schema
    .createIndex("idempotency_keys_created_idx")
    .on("idempotency_keys")
    .column("created_at")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    "idempotency_keys",
    "withdrawals",
    "payments",
    "ledger_entries",
    "ledger_transactions",
    "ledger_accounts",
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
