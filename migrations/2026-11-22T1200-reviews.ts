// Ratings and reviews of providers and workers after verified visits, and providers' promotions.
// Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // One review per visit, by a family member of the resident. A hidden review stays here (the
  // operator's reason with it) but leaves the public lists and the averages.
  await db.schema
    .createTable("reviews")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("visit_id", "text", (c) => c.notNull().references("visits.id"))
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
    .addColumn("service_id", "text", (c) => c.notNull().references("services.id"))
    .addColumn("worker_id", "text", (c) => c.references("workers.id"))
    .addColumn("author_id", "text", (c) => c.notNull().references("users.id"))
    .addColumn("provider_rating", "integer", (c) => c.notNull())
    .addColumn("worker_rating", "integer")
    .addColumn("comment", "text")
    .addColumn("reply", "text")
    .addColumn("replied_at", "text")
    .addColumn("replied_by", "text", (c) => c.references("users.id"))
    .addColumn("hidden_at", "text")
    .addColumn("hidden_by", "text", (c) => c.references("users.id"))
    .addColumn("hidden_reason", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("reviews_visit_idx")
    .on("reviews")
    .column("visit_id")
    .unique()
    .execute();
  await db.schema
    .createIndex("reviews_provider_idx")
    .on("reviews")
    .columns(["provider_id", "id"])
    .execute();

  // A worker's running rating (visible reviews only), kept with each review like the provider's.
  await db.schema
    .createTable("worker_ratings")
    .addColumn("worker_id", "text", (c) => c.primaryKey().references("workers.id"))
    .addColumn("rating_sum", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("rating_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();

  // A provider's discount on some of its services for a period of local dates (inclusive),
  // proposed by its admin and applied to bookings once an operator approves it.
  await db.schema
    .createTable("promotions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
    .addColumn("title", "text", (c) => c.notNull())
    .addColumn("percent_off", "integer")
    .addColumn("amount_off_minor", "integer")
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("starts_on", "text", (c) => c.notNull())
    .addColumn("ends_on", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("proposed_by", "text", (c) => c.notNull().references("users.id"))
    .addColumn("decided_by", "text", (c) => c.references("users.id"))
    .addColumn("decided_at", "text")
    .addColumn("decision_reason", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("promotions_provider_idx")
    .on("promotions")
    .columns(["provider_id", "id"])
    .execute();
  await db.schema
    .createIndex("promotions_status_idx")
    .on("promotions")
    .columns(["status", "id"])
    .execute();

  await db.schema
    .createTable("promotion_services")
    .addColumn("promotion_id", "text", (c) => c.notNull().references("promotions.id"))
    .addColumn("service_id", "text", (c) => c.notNull().references("services.id"))
    .addPrimaryKeyConstraint("promotion_services_pk", ["promotion_id", "service_id"])
    .execute();
  await db.schema
    .createIndex("promotion_services_service_idx")
    .on("promotion_services")
    .column("service_id")
    .execute();

  // The promotion a booking was priced with: its visits' escrow and the statement name it.
  await db.schema
    .createTable("booking_promotions")
    .addColumn("booking_id", "text", (c) => c.primaryKey().references("bookings.id"))
    .addColumn("promotion_id", "text", (c) => c.notNull().references("promotions.id"))
    .addColumn("full_price_minor", "integer", (c) => c.notNull())
    .addColumn("discount_minor", "integer", (c) => c.notNull())
    .addColumn("label", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("booking_promotions").execute();
  await db.schema.dropTable("promotion_services").execute();
  await db.schema.dropTable("promotions").execute();
  await db.schema.dropTable("worker_ratings").execute();
  await db.schema.dropTable("reviews").execute();
}
