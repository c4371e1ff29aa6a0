// Bookings of catalog services for a resident, and the visits they produce (scheduled
// occurrences, each with its own escrowed price). Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // A primary may let a member of the circle book and cancel too.
  await db.schema
    .alterTable("circle_members")
    .addColumn("can_book", "integer", (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable("bookings")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("service_id", "text", (c) => c.notNull().references("services.id"))
    .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
    .addColumn("booked_by", "text", (c) => c.notNull().references("users.id"))
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("schedule", "text", (c) => c.notNull())
    .addColumn("time_zone", "text", (c) => c.notNull())
    .addColumn("visit_price_minor", "integer", (c) => c.notNull())
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("duration_minutes", "integer", (c) => c.notNull())
    .addColumn("notes", "text")
    .addColumn("accept_by", "text", (c) => c.notNull())
    .addColumn("decided_at", "text")
    .addColumn("decided_by", "text", (c) => c.references("users.id"))
    .addColumn("decline_reason", "text")
    .addColumn("generated_through", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("bookings_resident_idx")
    .on("bookings")
    .columns(["resident_id", "created_at"])
    .execute();
  await db.schema
    .createIndex("bookings_provider_idx")
    .on("bookings")
    .columns(["provider_id", "status"])
    .execute();

  await db.schema
    .createTable("visits")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("booking_id", "text", (c) => c.notNull().references("bookings.id"))
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
    .addColumn("service_id", "text", (c) => c.notNull().references("services.id"))
    .addColumn("worker_id", "text", (c) => c.references("workers.id"))
    .addColumn("starts_at", "text", (c) => c.notNull())
    .addColumn("ends_at", "text", (c) => c.notNull())
    .addColumn("local_date", "text", (c) => c.notNull())
    .addColumn("local_time", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("price_minor", "integer", (c) => c.notNull())
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("verified_at", "text")
    .addColumn("review_until", "text")
    .addColumn("dispute_reason", "text")
    .addColumn("settled_at", "text")
    .addColumn("cancelled_at", "text")
    .addColumn("cancelled_by", "text", (c) => c.references("users.id"))
    .addColumn("cancel_reason", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  // A series generates each occurrence once, however often its window rolls forward.
  await db.schema
    .createIndex("visits_occurrence_idx")
    .on("visits")
    .columns(["booking_id", "starts_at"])
    .unique()
    .execute();
  await db.schema
    .createIndex("visits_resident_idx")
    .on("visits")
    .columns(["resident_id", "starts_at"])
    .execute();
  await db.schema
    .createIndex("visits_provider_idx")
    .on("visits")
    .columns(["provider_id", "starts_at"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("visits").execute();
  await db.schema.dropTable("bookings").execute();
  await db.schema.alterTable("circle_members").dropColumn("can_book").execute();
}
