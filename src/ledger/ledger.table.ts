// Row types of the ledger and wallet tables (see migrations/2026-11-22T0900-ledger.ts).

/** The ledger tables, merged into the Database interface in src/db/schema.ts. */
// biome-ignore lint/complexity/noBannedTypes: filled in as the tables are added
export type LedgerTables = {};
