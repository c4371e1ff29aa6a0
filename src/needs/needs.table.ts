// Row types of needs and offers (see migrations/2026-11-22T1100-needs.ts).

/** Merged into the Database type in src/db/schema.ts. */
// biome-ignore lint/complexity/noBannedTypes: filled in as the tables are added
export type NeedTables = {};
