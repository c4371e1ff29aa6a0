// The double-entry ledger. Money moves only through `post`: a transaction whose entries sum to
// zero, written with the accounts it touches locked, so that no account that must stay at or above
// zero (a wallet, an escrow, a payable, a withdrawal hold) ever goes below it, even when two
// requests race. A balance is always the sum of an account's entries; nothing else is stored.
import { PostgresAdapter, sql } from "kysely";
import { iso } from "../clock";
import type { Executor } from "../db/database";
import { AppError } from "../errors";
import { newId } from "../ids";
import type { AccountKind } from "./ledger.table";

export interface AccountRef {
  id: string;
  kind: AccountKind;
  ownerId: string | null;
}

export const accounts = {
  wallet: (residentId: string): AccountRef => ({
    id: `wallet:${residentId}`,
    kind: "wallet",
    ownerId: residentId,
  }),
  escrow: (visitId: string): AccountRef => ({
    id: `escrow:${visitId}`,
    kind: "escrow",
    ownerId: visitId,
  }),
  payable: (providerId: string): AccountRef => ({
    id: `payable:${providerId}`,
    kind: "payable",
    ownerId: providerId,
  }),
  hold: (withdrawalId: string): AccountRef => ({
    id: `hold:${withdrawalId}`,
    kind: "hold",
    ownerId: withdrawalId,
  }),
  revenue: (): AccountRef => ({ id: "revenue", kind: "revenue", ownerId: null }),
  outside: (): AccountRef => ({ id: "outside", kind: "outside", ownerId: null }),
};

/** Accounts holding someone's money: never below zero. Revenue and the outside world may be. */
const mustStayNonNegative: ReadonlySet<AccountKind> = new Set([
  "wallet",
  "escrow",
  "payable",
  "hold",
]);

export interface Posting {
  kind: string;
  description: string;
  currency: string;
  entries: { account: AccountRef; amount: number }[];
  reference?: { type: string; id: string } | undefined;
  residentId?: string | null | undefined;
  createdBy?: string | null | undefined;
}

export async function balanceOf(db: Executor, accountId: string): Promise<number> {
  const row = await db
    .selectFrom("ledger_entries")
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>("amount"), sql<number>`0`).as("balance"))
    .where("account_id", "=", accountId)
    .executeTakeFirst();
  return Number(row?.balance ?? 0);
}

async function ensureAccount(db: Executor, account: AccountRef, currency: string, now: Date) {
  await db
    .insertInto("ledger_accounts")
    .values({
      id: account.id,
      kind: account.kind,
      owner_id: account.ownerId,
      currency,
      created_at: iso(now),
    })
    .onConflict((oc) => oc.column("id").doNothing())
    .execute();
}

/**
 * Locks the accounts (in id order, so two postings never deadlock) for the rest of the
 * transaction: on PostgreSQL with FOR UPDATE; on SQLite the transaction already holds the only
 * writer. A concurrent posting on the same wallet waits, then sees this one's entries.
 */
async function lockAccounts(db: Executor, ids: string[]) {
  const sorted = [...new Set(ids)].sort();
  const rows = await db
    .selectFrom("ledger_accounts")
    .select(["id", "currency"])
    .where("id", "in", sorted)
    .orderBy("id")
    .$if(isPostgres(db), (q) => q.forUpdate())
    .execute();
  return new Map(rows.map((r) => [r.id, r.currency]));
}

/** Row locks (FOR UPDATE) exist on PostgreSQL; on SQLite the open transaction is the only writer. */
export function isPostgres(db: Executor): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/** Writes one balanced transaction, or throws and writes nothing (the caller's transaction). */
export async function post(db: Executor, posting: Posting, now: Date): Promise<string> {
  const sum = posting.entries.reduce((s, e) => s + e.amount, 0);
  if (sum !== 0 || posting.entries.length < 2) {
    throw new Error(`unbalanced ledger transaction ${posting.kind}: entries sum to ${sum}`);
  }
  for (const e of posting.entries) {
    if (!Number.isSafeInteger(e.amount)) throw new Error(`amount ${e.amount} is not an integer`);
    await ensureAccount(db, e.account, posting.currency, now);
  }
  const currencies = await lockAccounts(
    db,
    posting.entries.map((e) => e.account.id),
  );
  for (const [id, currency] of currencies) {
    if (currency !== posting.currency) {
      throw new AppError(
        "invalid_state",
        `account ${id} holds ${currency}, not ${posting.currency}`,
      );
    }
  }
  // What leaves each guarded account must be there.
  const change = new Map<string, { account: AccountRef; amount: number }>();
  for (const e of posting.entries) {
    const c = change.get(e.account.id) ?? { account: e.account, amount: 0 };
    c.amount += e.amount;
    change.set(e.account.id, c);
  }
  for (const { account, amount } of change.values()) {
    if (amount >= 0 || !mustStayNonNegative.has(account.kind)) continue;
    const balance = await balanceOf(db, account.id);
    if (balance + amount < 0) {
      throw new AppError(
        "insufficient_funds",
        account.kind === "wallet"
          ? `the wallet holds ${formatMoney(balance, posting.currency)}, ${formatMoney(-amount, posting.currency)} is needed`
          : `account ${account.id} holds ${balance}, cannot take ${-amount}`,
        { balance, needed: -amount, currency: posting.currency },
      );
    }
  }
  const id = newId();
  await db
    .insertInto("ledger_transactions")
    .values({
      id,
      kind: posting.kind,
      reference_type: posting.reference?.type ?? null,
      reference_id: posting.reference?.id ?? null,
      resident_id: posting.residentId ?? null,
      description: posting.description,
      created_by: posting.createdBy ?? null,
      created_at: iso(now),
    })
    .execute();
  await db
    .insertInto("ledger_entries")
    .values(
      posting.entries
        .filter((e) => e.amount !== 0)
        .map((e) => ({
          id: newId(),
          transaction_id: id,
          account_id: e.account.id,
          amount: e.amount,
          created_at: iso(now),
        })),
    )
    .execute();
  return id;
}

/** Minor units as a person reads them: 12345 CNY -> "CNY 123.45". */
export function formatMoney(minor: number, currency: string): string {
  const digits = currency === "JPY" || currency === "KRW" ? 0 : 2;
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  const major =
    digits === 0 ? String(abs) : `${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
  return `${currency} ${sign}${major}`;
}

/** The whole ledger sums to zero, and so does every transaction: a check for tests and audits. */
export async function ledgerInvariants(db: Executor) {
  const total = await db
    .selectFrom("ledger_entries")
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>("amount"), sql<number>`0`).as("total"))
    .executeTakeFirst();
  const unbalanced = await db
    .selectFrom("ledger_entries")
    .select("transaction_id")
    .groupBy("transaction_id")
    .having((eb) => eb.fn.sum("amount"), "!=", 0)
    .execute();
  const negative = await db
    .selectFrom("ledger_entries as e")
    .innerJoin("ledger_accounts as a", "a.id", "e.account_id")
    .select(["a.id", (eb) => eb.fn.sum<number>("e.amount").as("balance")])
    .where("a.kind", "in", [...mustStayNonNegative])
    .groupBy("a.id")
    .having((eb) => eb.fn.sum("e.amount"), "<", 0)
    .execute();
  return {
    total: Number(total?.total ?? 0),
    unbalancedTransactions: unbalanced.map((u) => u.transaction_id),
    negativeAccounts: negative.map((n) => n.id),
  };
}
