// Money: double-entry ledger accounts, transactions and entries, wallet top-ups and withdrawals,
// gateway events and idempotency keys. Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(_db: Kysely<any>): Promise<void> {}

export async function down(_db: Kysely<any>): Promise<void> {}
