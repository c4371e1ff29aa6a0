// Every query over services, including the search and keeping SQLite's FTS5 index in step (done
// here rather than by triggers, so the portable schema carries no SQLite-only triggers).
import { type Expression, type Insertable, PostgresAdapter, type SqlBool, sql } from "kysely";
import type { Executor } from "../db/database";
import type { ProviderCategory, ServiceRow, ServicesTable } from "../providers/providers.table";

export function isPostgres(db: Executor): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

export async function findService(db: Executor, id: string): Promise<ServiceRow | undefined> {
  return db.selectFrom("services").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function insertService(
  db: Executor,
  row: Omit<Insertable<ServicesTable>, "search_rowid">,
) {
  if (isPostgres(db)) {
    await db
      .insertInto("services")
      .values({ ...row, search_rowid: null })
      .execute();
    return;
  }
  // SQLite runs one writer at a time, so max + 1 inside the transaction cannot collide.
  await db
    .insertInto("services")
    .values({
      ...row,
      search_rowid: sql<number>`(SELECT coalesce(max(search_rowid), 0) + 1 FROM services)`,
    })
    .execute();
  await sql`INSERT INTO services_fts (rowid, title, description)
    SELECT search_rowid, title, description FROM services WHERE id = ${row.id}`.execute(db);
}

export async function updateServiceRow(
  db: Executor,
  before: ServiceRow,
  patch: Partial<Omit<ServicesTable, "id" | "provider_id" | "search_rowid">>,
) {
  const textChanges =
    (patch.title !== undefined && patch.title !== before.title) ||
    (patch.description !== undefined && patch.description !== before.description);
  const sqliteIndex = !isPostgres(db) && textChanges && before.search_rowid !== null;
  if (sqliteIndex) {
    // External content: the index is told the old text to remove.
    await sql`INSERT INTO services_fts (services_fts, rowid, title, description)
      VALUES ('delete', ${before.search_rowid}, ${before.title}, ${before.description})`.execute(
      db,
    );
  }
  await db.updateTable("services").set(patch).where("id", "=", before.id).execute();
  if (sqliteIndex) {
    await sql`INSERT INTO services_fts (rowid, title, description)
      SELECT search_rowid, title, description FROM services WHERE id = ${before.id}`.execute(db);
  }
}

export async function listServicesOf(db: Executor, providerId: string, activeOnly: boolean) {
  let q = db.selectFrom("services").selectAll().where("provider_id", "=", providerId);
  if (activeOnly) q = q.where("active", "=", 1);
  return q.orderBy("category").orderBy("title").orderBy("id").execute();
}

const CJK = /[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]/u;

/** Words of a free-text query: letters and digits only, so nothing reaches a query syntax. */
export function queryWords(q: string): string[] {
  return [...new Set(q.toLowerCase().split(/[^\p{L}\p{N}]+/u))].filter(Boolean).slice(0, 8);
}

function likePattern(word: string) {
  return `%${word.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * A condition on services `s` that every word of the query matches.
 * SQLite: FTS5 with the trigram tokenizer (substrings, Chinese included); a word shorter than
 * three characters has no trigram and is matched with LIKE instead.
 * PostgreSQL: the GIN-indexed tsvector ('simple'), each word as a prefix; a Chinese word, which
 * no built-in configuration segments, is matched as a substring with LIKE (bounded by the
 * locality filter to the few services of the resident's providers).
 */
function textCondition(db: Executor, words: string[]): Expression<SqlBool> | undefined {
  if (words.length === 0) return undefined;
  const conditions: Expression<SqlBool>[] = [];
  const likeWord = (w: string) =>
    sql<SqlBool>`(lower(s.title) LIKE ${likePattern(w)} ESCAPE '\\' OR lower(s.description) LIKE ${likePattern(w)} ESCAPE '\\')`;
  if (isPostgres(db)) {
    const indexed = words.filter((w) => !CJK.test(w));
    for (const w of words.filter((w) => CJK.test(w))) conditions.push(likeWord(w));
    if (indexed.length > 0) {
      const tsquery = indexed.map((w) => `${w}:*`).join(" & ");
      conditions.push(
        sql<SqlBool>`to_tsvector('simple', s.title || ' ' || s.description) @@ to_tsquery('simple', ${tsquery})`,
      );
    }
  } else {
    const indexed = words.filter((w) => [...w].length >= 3);
    for (const w of words.filter((w) => [...w].length < 3)) conditions.push(likeWord(w));
    if (indexed.length > 0) {
      const match = indexed.map((w) => `"${w}"`).join(" AND ");
      conditions.push(
        sql<SqlBool>`s.search_rowid IN (SELECT rowid FROM services_fts WHERE services_fts MATCH ${match})`,
      );
    }
  }
  return sql<SqlBool>`(${sql.join(conditions, sql` AND `)})`;
}

const EARTH_KM = 6371;

/** Great-circle distance in km between a provider's centre and a point (haversine, in SQL). */
function distanceKm(lat: number, lng: number) {
  return sql<number | null>`(${2 * EARTH_KM} * asin(sqrt(
    sin(radians(p.centre_latitude - ${lat}) / 2) * sin(radians(p.centre_latitude - ${lat}) / 2)
    + cos(radians(${lat})) * cos(radians(p.centre_latitude))
      * sin(radians(p.centre_longitude - ${lng}) / 2) * sin(radians(p.centre_longitude - ${lng}) / 2))))`;
}

export interface SearchFilter {
  localityKey: string;
  latitude: number;
  longitude: number;
  words: string[];
  category?: ProviderCategory | undefined;
  minPrice?: number | undefined;
  maxPrice?: number | undefined;
  minRating?: number | undefined;
  sort: "rating" | "price" | "distance";
  limit: number;
  offset: number;
}

/** The widest service radius accepted (ServiceAreaSchema), for the latitude band. */
const MAX_RADIUS_KM = 100;

export async function searchServices(db: Executor, f: SearchFilter) {
  const band = MAX_RADIUS_KM / 111;
  const distance = distanceKm(f.latitude, f.longitude);
  // Verified providers naming the resident's locality, or whose radius covers the resident.
  const serving = sql<string>`(
    SELECT pl.provider_id FROM provider_localities pl WHERE pl.locality_key = ${f.localityKey}
    UNION
    SELECT p.id FROM providers p
    WHERE p.radius_km IS NOT NULL
      AND p.centre_latitude BETWEEN ${f.latitude - band} AND ${f.latitude + band}
      AND ${distance} <= p.radius_km)`;
  const ratingAverage = sql<
    number | null
  >`CASE WHEN p.rating_count > 0 THEN p.rating_sum * 1.0 / p.rating_count END`;

  let q = db
    .selectFrom("services as s")
    .innerJoin("providers as p", "p.id", "s.provider_id")
    .selectAll("s")
    .select([
      "p.display_name as provider_name",
      "p.rating_sum as provider_rating_sum",
      "p.rating_count as provider_rating_count",
      distance.as("distance_km"),
    ])
    .where("p.status", "=", "verified")
    .where("s.active", "=", 1)
    .where(sql<SqlBool>`s.provider_id IN ${serving}`);
  if (f.category) q = q.where("s.category", "=", f.category);
  if (f.minPrice !== undefined) q = q.where("s.price_minor", ">=", f.minPrice);
  if (f.maxPrice !== undefined) q = q.where("s.price_minor", "<=", f.maxPrice);
  if (f.minRating !== undefined) {
    q = q
      .where("p.rating_count", ">", 0)
      .where(
        sql<SqlBool>`p.rating_sum >= CAST(${f.minRating} AS double precision) * p.rating_count`,
      );
  }
  const text = textCondition(db, f.words);
  if (text) q = q.where(text);

  if (f.sort === "rating") {
    q = q
      .orderBy(ratingAverage, (ob) => ob.desc().nullsLast())
      .orderBy("p.rating_count", "desc")
      .orderBy("s.price_minor", "asc");
  } else if (f.sort === "price") {
    q = q.orderBy("s.price_minor", "asc");
  } else {
    q = q.orderBy(distance, (ob) => ob.asc().nullsLast());
  }
  return q
    .orderBy("s.id")
    .limit(f.limit + 1)
    .offset(f.offset)
    .execute();
}
