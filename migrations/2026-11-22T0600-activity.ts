// When each resident was last active by their devices' account (a motion, a check-in, a door, a
// reading), for the "no activity" and "no check-in today" rules. Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("resident_activity")
    .addColumn("resident_id", "text", (c) =>
      c.primaryKey().references("residents.id").onDelete("cascade"),
    )
    .addColumn("last_activity_at", "text", (c) => c.notNull())
    .addColumn("last_check_in_at", "text")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("resident_activity").execute();
}
