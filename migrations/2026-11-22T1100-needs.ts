// Needs a family posts when the catalog lacks what they want, and providers' offers on them.
// Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("needs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("posted_by", "text", (c) => c.notNull().references("users.id"))
    .addColumn("category", "text", (c) => c.notNull())
    .addColumn("description", "text", (c) => c.notNull())
    .addColumn("wanted_date", "text", (c) => c.notNull())
    .addColumn("wanted_time", "text")
    .addColumn("budget_minor", "integer")
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("accepted_offer_id", "text")
    .addColumn("booking_id", "text", (c) => c.references("bookings.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("needs_status_idx")
    .on("needs")
    .columns(["status", "category"])
    .execute();
  await db.schema
    .createIndex("needs_resident_idx")
    .on("needs")
    .columns(["resident_id", "created_at"])
    .execute();

  await db.schema
    .createTable("offers")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("need_id", "text", (c) => c.notNull().references("needs.id"))
    .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
    .addColumn("service_id", "text", (c) => c.notNull().references("services.id"))
    .addColumn("price_minor", "integer", (c) => c.notNull())
    .addColumn("visit_date", "text", (c) => c.notNull())
    .addColumn("visit_time", "text", (c) => c.notNull())
    .addColumn("message", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.notNull().references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("decided_at", "text")
    .execute();
  // One live offer per provider per need.
  await db.schema
    .createIndex("offers_need_provider_idx")
    .on("offers")
    .columns(["need_id", "provider_id"])
    .unique()
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("offers").execute();
  await db.schema.dropTable("needs").execute();
}
