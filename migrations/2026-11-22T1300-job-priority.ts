// Jobs get a priority: an SOS escalation step or its SMS must not wait behind a backlog of
// routine jobs (vital warnings, rollups, bookings). Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("jobs")
    .addColumn("priority", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createIndex("jobs_priority_due_idx")
    .on("jobs")
    .columns(["status", "priority", "due_at"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("jobs_priority_due_idx").execute();
  await db.schema.alterTable("jobs").dropColumn("priority").execute();
}
