// Row types of the providers, workers and catalog tables (see migrations/2026-11-22T0800-providers.ts).

/** The provider tables, merged into the Database interface in src/db/schema.ts. */
// biome-ignore lint/complexity/noBannedTypes: filled in as the tables are added
export type ProviderTables = {};
