// Row types of reviews and promotions (see migrations/2026-11-22T1200-reviews.ts).

/** Merged into the Database type in src/db/schema.ts. */
// biome-ignore lint/complexity/noBannedTypes: filled in as the tables are added
export type ReviewTables = {};
