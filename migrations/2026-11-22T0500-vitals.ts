// Hourly summaries of readings older than the raw retention, so long-range charts outlive the raw
// rows. A sum (not a mean) is kept so that summaries of the same hour merge exactly.
// Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("reading_rollups")
    .addColumn("resident_id", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    // The UTC hour, as ISO-8601 text: 2026-11-22T09:00:00.000Z.
    .addColumn("hour_start", "text", (c) => c.notNull())
    .addColumn("unit", "text", (c) => c.notNull())
    .addColumn("reading_count", "integer", (c) => c.notNull())
    .addColumn("value_sum", "double precision", (c) => c.notNull())
    .addColumn("value_min", "double precision", (c) => c.notNull())
    .addColumn("value_max", "double precision", (c) => c.notNull())
    .addPrimaryKeyConstraint("reading_rollups_pk", ["resident_id", "type", "hour_start"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("reading_rollups").execute();
}
