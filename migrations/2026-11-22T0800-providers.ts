// Providers, their workers and the services they offer (the catalog, with full-text search).
// Frozen: never import app code.
import { type Kysely, PostgresAdapter, sql } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  const isPostgres = db.getExecutor().adapter instanceof PostgresAdapter;

  await db.schema
    .createTable("providers")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("legal_name", "text", (c) => c.notNull())
    .addColumn("display_name", "text", (c) => c.notNull())
    .addColumn("licence_number", "text", (c) => c.notNull().unique())
    .addColumn("categories", "text", (c) => c.notNull())
    .addColumn("centre_latitude", "double precision")
    .addColumn("centre_longitude", "double precision")
    .addColumn("radius_km", "double precision")
    .addColumn("contact_email", "text", (c) => c.notNull())
    .addColumn("contact_phone", "text", (c) => c.notNull())
    .addColumn("on_call_name", "text", (c) => c.notNull())
    .addColumn("on_call_phone", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("status_reason", "text")
    .addColumn("status_changed_at", "text")
    .addColumn("status_changed_by", "text", (c) => c.references("users.id"))
    // Kept by the ratings and bookings code, so the catalog sorts without aggregating reviews.
    .addColumn("rating_sum", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("rating_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("no_show_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_by", "text", (c) => c.references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("providers_status_idx")
    .on("providers")
    .columns(["status", "created_at"])
    .execute();
  // Providers serving a radius, found by a latitude band before the exact distance is computed;
  // covering, so the band is read from the index alone.
  await db.schema
    .createIndex("providers_centre_idx")
    .on("providers")
    .columns(["centre_latitude", "centre_longitude", "radius_km", "status", "id"])
    .where(sql<boolean>`radius_km is not null`)
    .execute();

  await db.schema
    .createTable("provider_localities")
    .addColumn("locality_key", "text", (c) => c.notNull())
    .addColumn("provider_id", "text", (c) =>
      c.notNull().references("providers.id").onDelete("cascade"),
    )
    .addColumn("locality", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("provider_localities_pk", ["locality_key", "provider_id"])
    .execute();
  await db.schema
    .createIndex("provider_localities_provider_idx")
    .on("provider_localities")
    .column("provider_id")
    .execute();

  await db.schema
    .createTable("provider_admins")
    .addColumn("provider_id", "text", (c) =>
      c.notNull().references("providers.id").onDelete("cascade"),
    )
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("added_by", "text", (c) => c.references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("provider_admins_pk", ["provider_id", "user_id"])
    .execute();
  await db.schema
    .createIndex("provider_admins_user_idx")
    .on("provider_admins")
    .column("user_id")
    .execute();

  await db.schema
    .createTable("workers")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
    .addColumn("user_id", "text", (c) => c.unique().references("users.id"))
    .addColumn("legal_name", "text", (c) => c.notNull())
    .addColumn("phone", "text", (c) => c.notNull())
    .addColumn("photo_ref", "text")
    // AES-256-GCM under an instance key; only the last four characters are kept in clear.
    .addColumn("id_document_cipher", "text", (c) => c.notNull())
    .addColumn("id_document_last4", "text", (c) => c.notNull())
    .addColumn("skills", "text", (c) => c.notNull())
    .addColumn("background_checked_on", "text")
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("status_reason", "text")
    .addColumn("status_changed_at", "text")
    .addColumn("status_changed_by", "text", (c) => c.references("users.id"))
    .addColumn("created_by", "text", (c) => c.references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("workers_provider_idx")
    .on("workers")
    .columns(["provider_id", "legal_name"])
    .execute();

  await db.schema
    .createTable("worker_certificates")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("worker_id", "text", (c) => c.notNull().references("workers.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("skill", "text", (c) => c.notNull())
    .addColumn("expires_on", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("worker_certificates_worker_idx")
    .on("worker_certificates")
    .columns(["worker_id", "skill"])
    .execute();

  await db.schema
    .createTable("services")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
    // SQLite: the service's rowid in the FTS5 index (a stable integer; an implicit rowid may
    // change on VACUUM). PostgreSQL indexes the row's text itself and leaves this empty.
    .addColumn("search_rowid", "integer", (c) => c.unique())
    .addColumn("title", "text", (c) => c.notNull())
    .addColumn("category", "text", (c) => c.notNull())
    .addColumn("description", "text", (c) => c.notNull())
    .addColumn("price_minor", "integer", (c) => c.notNull())
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("unit", "text", (c) => c.notNull())
    .addColumn("duration_minutes", "integer", (c) => c.notNull())
    .addColumn("min_notice_hours", "integer", (c) => c.notNull())
    .addColumn("availability", "text", (c) => c.notNull())
    .addColumn("active", "integer", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  // Search always starts from the providers serving the resident, then narrows their services
  // (covering for the count that decides how words are matched).
  await db.schema
    .createIndex("services_provider_idx")
    .on("services")
    .columns(["provider_id", "category", "price_minor", "active"])
    .execute();

  // Full text over title and description: the only part that differs between the databases.
  if (isPostgres) {
    // 'simple' (no stemming, no stop words) suits mixed English and Chinese titles; Chinese is
    // not segmented by any built-in configuration, so the service code matches CJK text with a
    // substring LIKE over the few services of the resident's providers instead (pg_trgm would
    // index it, but an extension is database-wide and needs privileges a migration should not
    // assume).
    await sql`CREATE INDEX services_fts_idx ON services
      USING gin (to_tsvector('simple', title || ' ' || description))`.execute(db);
  } else {
    // External content (the text stays in services). The trigram tokenizer matches substrings,
    // which covers Chinese, where words are not separated by spaces.
    await sql`CREATE VIRTUAL TABLE services_fts USING fts5(title, description,
      content='services', content_rowid='search_rowid', tokenize='trigram')`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) {
    await sql`DROP TABLE IF EXISTS services_fts`.execute(db);
  }
  for (const table of [
    "services",
    "worker_certificates",
    "workers",
    "provider_admins",
    "provider_localities",
    "providers",
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
