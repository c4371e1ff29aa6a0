// Row types of the ledger and wallet tables (see migrations/2026-11-22T0900-ledger.ts).
import type { Selectable } from "kysely";

export const accountKinds = ["wallet", "escrow", "payable", "hold", "revenue", "outside"] as const;
export type AccountKind = (typeof accountKinds)[number];

export interface LedgerAccountsTable {
  /** Readable and stable: wallet:<residentId>, escrow:<visitId>, payable:<providerId>, ... */
  id: string;
  kind: AccountKind;
  owner_id: string | null;
  currency: string;
  created_at: string;
}

export interface LedgerTransactionsTable {
  id: string;
  kind: string;
  reference_type: string | null;
  reference_id: string | null;
  resident_id: string | null;
  description: string;
  created_by: string | null;
  created_at: string;
}

export interface LedgerEntriesTable {
  id: string;
  transaction_id: string;
  account_id: string;
  /** Integer minor units; positive adds to the account, negative takes from it. */
  amount: number;
  created_at: string;
}

export type PaymentMethod = "cash" | "bank_transfer" | "gateway";
export type PaymentStatus = "pending" | "completed" | "failed";

export interface PaymentsTable {
  id: string;
  resident_id: string;
  payer_user_id: string;
  method: PaymentMethod;
  amount: number;
  currency: string;
  status: PaymentStatus;
  reference: string | null;
  gateway_event_id: string | null;
  transaction_id: string | null;
  recorded_by: string | null;
  created_at: string;
  completed_at: string | null;
}
export type PaymentRow = Selectable<PaymentsTable>;

export type WithdrawalStatus = "requested" | "paid" | "rejected";

export interface WithdrawalsTable {
  id: string;
  resident_id: string;
  requested_by: string;
  amount: number;
  currency: string;
  status: WithdrawalStatus;
  reason: string | null;
  decided_by: string | null;
  created_at: string;
  decided_at: string | null;
}
export type WithdrawalRow = Selectable<WithdrawalsTable>;

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  request_hash: string;
  response_status: number;
  response_body: string;
  created_at: string;
}

/** The ledger tables, merged into the Database interface in src/db/schema.ts. */
export type LedgerTables = {
  ledger_accounts: LedgerAccountsTable;
  ledger_transactions: LedgerTransactionsTable;
  ledger_entries: LedgerEntriesTable;
  payments: PaymentsTable;
  withdrawals: WithdrawalsTable;
  idempotency_keys: IdempotencyKeysTable;
};
