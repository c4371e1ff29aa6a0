// Care visits: who was assigned, the proof that a worker came (check-in and check-out with the
// six elements of electronic visit verification), the care-plan outcomes, the wellbeing report,
// one-time presence codes, and the late / missed / open marks the visit watch sets.
// Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  for (const [name, type] of [
    ["assigned_at", "text"],
    ["assigned_by", "text"],
    ["plan_version", "integer"],
    ["checked_in_at", "text"],
    ["checked_out_at", "text"],
    ["late_at", "text"],
    ["missed_at", "text"],
    ["open_alerted_at", "text"],
  ] as const) {
    await db.schema.alterTable("visits").addColumn(name, type).execute();
  }
  // The worker a provider gave a whole series: visits rolled forward later get them too.
  await db.schema.alterTable("bookings").addColumn("worker_id", "text").execute();
  await db.schema
    .createIndex("visits_worker_idx")
    .on("visits")
    .columns(["worker_id", "starts_at"])
    .execute();

  // The home's entry log and the EVV record: one check-in and one check-out per visit.
  await db.schema
    .createTable("visit_entries")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("visit_id", "text", (c) => c.notNull().references("visits.id"))
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
    .addColumn("worker_id", "text", (c) => c.notNull().references("workers.id"))
    .addColumn("worker_name", "text", (c) => c.notNull())
    .addColumn("service_type", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("client_id", "text", (c) => c.notNull())
    .addColumn("occurred_at", "text", (c) => c.notNull())
    .addColumn("received_at", "text", (c) => c.notNull())
    .addColumn("offline", "integer", (c) => c.notNull())
    .addColumn("method", "text", (c) => c.notNull())
    .addColumn("verified", "integer", (c) => c.notNull())
    .addColumn("latitude", "double precision")
    .addColumn("longitude", "double precision")
    .addColumn("accuracy_m", "double precision")
    .addColumn("distance_m", "double precision")
    .addColumn("exception", "text")
    .addColumn("exception_reason", "text")
    .addColumn("notes", "text")
    .addColumn("wellbeing", "text")
    .addColumn("duration_comment", "text")
    .addColumn("created_by", "text", (c) => c.notNull().references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("visit_entries_kind_idx")
    .on("visit_entries")
    .columns(["visit_id", "kind"])
    .unique()
    .execute();
  // Sending an entry twice (a phone's retry, an offline queue replayed) records it once.
  await db.schema
    .createIndex("visit_entries_client_idx")
    .on("visit_entries")
    .columns(["created_by", "client_id"])
    .unique()
    .execute();
  await db.schema
    .createIndex("visit_entries_resident_idx")
    .on("visit_entries")
    .columns(["resident_id", "occurred_at"])
    .execute();

  // What was done about each task and medication due in the visit's window.
  await db.schema
    .createTable("visit_outcomes")
    .addColumn("visit_id", "text", (c) => c.notNull().references("visits.id"))
    .addColumn("item_kind", "text", (c) => c.notNull())
    .addColumn("item_id", "text", (c) => c.notNull())
    .addColumn("due_time", "text", (c) => c.notNull())
    .addColumn("title", "text", (c) => c.notNull())
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("reason", "text")
    .addColumn("recorded_at", "text", (c) => c.notNull())
    .addColumn("recorded_by", "text", (c) => c.notNull().references("users.id"))
    .addPrimaryKeyConstraint("visit_outcomes_pk", ["visit_id", "item_kind", "item_id", "due_time"])
    .execute();

  // One-time codes that prove presence: shown by the home device, or confirmed by the family.
  await db.schema
    .createTable("visit_codes")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("visit_id", "text", (c) => c.notNull().references("visits.id"))
    .addColumn("via", "text", (c) => c.notNull())
    .addColumn("code_hash", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .addColumn("confirmed_at", "text")
    .addColumn("confirmed_by", "text", (c) => c.references("users.id"))
    .addColumn("failed_attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("used_at", "text")
    .execute();
  await db.schema
    .createIndex("visit_codes_visit_idx")
    .on("visit_codes")
    .columns(["visit_id", "created_at"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("visit_codes").execute();
  await db.schema.dropTable("visit_outcomes").execute();
  await db.schema.dropTable("visit_entries").execute();
  await db.schema.dropIndex("visits_worker_idx").execute();
  await db.schema.alterTable("bookings").dropColumn("worker_id").execute();
  for (const name of [
    "open_alerted_at",
    "missed_at",
    "late_at",
    "checked_out_at",
    "checked_in_at",
    "plan_version",
    "assigned_by",
    "assigned_at",
  ]) {
    await db.schema.alterTable("visits").dropColumn(name).execute();
  }
}
