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

export type TextWay = "scan" | "index";

/**
 * How a query's words are matched against services `s`; every word must match.
 *
 * "scan": each word as a case-insensitive substring of the title or description (LIKE on
 * SQLite, ILIKE on PostgreSQL), checked on the candidate rows. The locality filter always
 * applies, so the candidates are the services of the few providers serving one resident, and
 * checking them is far cheaper than collecting every match of a common word across the whole
 * catalog (bench:catalog, 100,000 services, SQLite: 1.5-9 ms against 40-140 ms for "cleaning"
 * or "patient"; PostgreSQL's per-row to_tsvector was 100 ms). Neither FTS5 nor a GIN index can be
 * probed for one row cheaply.
 *
 * "index", for many candidates (a dense locality, wide radii), where a rare word's short posting
 * list wins: SQLite's FTS5 trigram index (substrings too, Chinese included; a word shorter than
 * three characters has no trigram and is matched with LIKE), or PostgreSQL's GIN-indexed tsvector
 * ('simple'), each word as a prefix of a word; a Chinese word, which no built-in configuration
 * segments, is matched with ILIKE.
 */
function textCondition(
  db: Executor,
  words: string[],
  way: TextWay,
): Expression<SqlBool> | undefined {
  if (words.length === 0) return undefined;
  const postgres = isPostgres(db);
  const substring = (w: string) =>
    postgres
      ? sql<SqlBool>`(s.title ILIKE ${likePattern(w)} OR s.description ILIKE ${likePattern(w)})`
      : // SQLite's LIKE ignores case by itself (ASCII letters, as its lower() does).
        sql<SqlBool>`(s.title LIKE ${likePattern(w)} ESCAPE '\\' OR s.description LIKE ${likePattern(w)} ESCAPE '\\')`;
  const conditions: Expression<SqlBool>[] = [];
  if (way === "scan") {
    conditions.push(...words.map(substring));
  } else if (postgres) {
    const indexed = words.filter((w) => !CJK.test(w));
    conditions.push(...words.filter((w) => CJK.test(w)).map(substring));
    if (indexed.length > 0) {
      const tsquery = indexed.map((w) => `${w}:*`).join(" & ");
      conditions.push(
        sql<SqlBool>`to_tsvector('simple', s.title || ' ' || s.description) @@ to_tsquery('simple', ${tsquery})`,
      );
    }
  } else {
    const indexed = words.filter((w) => [...w].length >= 3);
    conditions.push(...words.filter((w) => [...w].length < 3).map(substring));
    if (indexed.length > 0) {
      const match = indexed.map((w) => `"${w}"`).join(" AND ");
      conditions.push(
        sql<SqlBool>`s.search_rowid IN (SELECT rowid FROM services_fts WHERE services_fts MATCH ${match})`,
      );
    }
  }
  return sql<SqlBool>`(${sql.join(conditions, sql` AND `)})`;
}

/** Above this many candidate services, words are matched through the full-text index. */
export const SCAN_LIMIT = 20_000;

const EARTH_KM = 6371;
const KM_PER_DEGREE = 111.2;

/** Great-circle distance in km between a provider's centre and a point (haversine, in SQL). */
function distanceKm(lat: number, lng: number) {
  return sql<number | null>`(${2 * EARTH_KM} * asin(sqrt(
    sin(radians(p.centre_latitude - ${lat}) / 2) * sin(radians(p.centre_latitude - ${lat}) / 2)
    + cos(radians(${lat})) * cos(radians(p.centre_latitude))
      * sin(radians(p.centre_longitude - ${lng}) / 2) * sin(radians(p.centre_longitude - ${lng}) / 2))))`;
}

/** The widest service radius accepted (ServiceAreaSchema), for the latitude band. */
const MAX_RADIUS_KM = 100;

/**
 * Providers naming the locality, or verified ones whose radius covers the point, and how many
 * active services they have between them (which decides how words are matched). The search
 * checks every provider's status again; joining providers here made PostgreSQL hash the whole
 * table for a locality with many providers.
 */
export async function servingProviders(
  db: Executor,
  where: { localityKey: string; latitude: number; longitude: number },
): Promise<{ providerIds: string[]; activeServices: number }> {
  const { localityKey, latitude: lat, longitude: lng } = where;
  const band = MAX_RADIUS_KM / KM_PER_DEGREE;
  const { rows } = await sql<{ id: string; n: number }>`
    SELECT c.id, (SELECT count(*) FROM services s WHERE s.provider_id = c.id AND s.active = 1) AS n
    FROM (
      SELECT pl.provider_id AS id FROM provider_localities pl WHERE pl.locality_key = ${localityKey}
      UNION
      SELECT p.id FROM providers p
      WHERE p.radius_km IS NOT NULL
        AND p.centre_latitude BETWEEN ${lat - band} AND ${lat + band}
        AND p.status = 'verified'
        AND abs(p.centre_latitude - ${lat}) * ${KM_PER_DEGREE} <= p.radius_km
        AND ${distanceKm(lat, lng)} <= p.radius_km
    ) c`.execute(db);
  return {
    providerIds: rows.map((r) => r.id),
    activeServices: rows.reduce((sum, r) => sum + Number(r.n), 0),
  };
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
  /** Tests: match words through the index (or by scanning) whatever the number of candidates. */
  textWay?: TextWay | undefined;
}

export async function searchServices(db: Executor, f: SearchFilter) {
  // Two steps: the providers serving the resident first (a few hundred at most, known exactly),
  // so both planners walk their services by index instead of guessing at a subquery.
  const { providerIds, activeServices } = await servingProviders(db, f);
  if (providerIds.length === 0) return [];
  const postgres = isPostgres(db);
  // On PostgreSQL the same list also bounds providers, or it hashes the whole providers table.
  const inProviders = postgres
    ? sql<SqlBool>`s.provider_id = ANY(${providerIds}) AND p.id = ANY(${providerIds})`
    : sql<SqlBool>`s.provider_id IN (SELECT value FROM json_each(${JSON.stringify(providerIds)}))`;
  const distance = distanceKm(f.latitude, f.longitude);
  const ratingAverage = sql<
    number | null
  >`CASE WHEN p.rating_count > 0 THEN p.rating_sum * 1.0 / p.rating_count END`;

  // The distance is computed in SQL only to sort by it; the page's rows get theirs afterwards.
  let q = db
    .selectFrom("services as s")
    .innerJoin("providers as p", "p.id", "s.provider_id")
    .selectAll("s")
    .select([
      "p.display_name as provider_name",
      "p.rating_sum as provider_rating_sum",
      "p.rating_count as provider_rating_count",
      "p.centre_latitude as provider_latitude",
      "p.centre_longitude as provider_longitude",
    ])
    .where(inProviders)
    .where("p.status", "=", "verified")
    .where("s.active", "=", 1);
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
  const way: TextWay = f.textWay ?? (activeServices > SCAN_LIMIT ? "index" : "scan");
  const text = textCondition(db, f.words, way);
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
  const rows = await q
    .orderBy("s.id")
    .limit(f.limit + 1)
    .offset(f.offset)
    .execute();
  return rows.map((r) => ({
    ...r,
    distance_km:
      r.provider_latitude === null || r.provider_longitude === null
        ? null
        : haversineKm(
            f.latitude,
            f.longitude,
            Number(r.provider_latitude),
            Number(r.provider_longitude),
          ),
  }));
}

const rad = (deg: number) => (deg * Math.PI) / 180;

export function haversineKm(lat1: number, lng1: number, lat2: number, lng2: number): number {
  const a =
    Math.sin(rad(lat2 - lat1) / 2) ** 2 +
    Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lng2 - lng1) / 2) ** 2;
  return 2 * EARTH_KM * Math.asin(Math.sqrt(a));
}
