// Every query of the vitals feature, over `readings` and `reading_rollups`. Buckets are cut from
// the ISO-8601 UTC text itself (its first 16 characters name the minute, 13 the hour, 10 the
// day), so the same SQL groups alike on SQLite and PostgreSQL.
import { sql } from "kysely";
import type { Executor } from "../db/database";
import { withRollups } from "./vitals.table";

export type BucketSize = "minute" | "hour" | "day";

export const keyLength: Record<BucketSize, number> = { minute: 16, hour: 13, day: 10 };

export interface Aggregate {
  /** The bucket's ISO prefix: 2026-11-22T09:03 (minute), 2026-11-22T09 (hour), 2026-11-22 (day). */
  key: string;
  min: number;
  max: number;
  sum: number;
  count: number;
}

interface Range {
  residentId: string;
  type: string;
  from: string;
  to: string;
}

export async function latestReading(db: Executor, residentId: string, type: string) {
  return db
    .selectFrom("readings")
    .select(["type", "value", "unit", "measured_at", "device_id"])
    .where("resident_id", "=", residentId)
    .where("type", "=", type)
    .orderBy("measured_at", "desc")
    .orderBy("received_at", "desc")
    .orderBy("device_id")
    .limit(1)
    .executeTakeFirst();
}

/** Raw readings in [from, to), oldest first; at most `limit`. */
export async function rawReadings(db: Executor, r: Range, limit: number) {
  return db
    .selectFrom("readings")
    .select(["measured_at", "value", "device_id"])
    .where("resident_id", "=", r.residentId)
    .where("type", "=", r.type)
    .where("measured_at", ">=", r.from)
    .where("measured_at", "<", r.to)
    .orderBy("measured_at")
    .orderBy("device_id")
    .limit(limit)
    .execute();
}

const toAggregate = (row: {
  key: string;
  min: unknown;
  max: unknown;
  sum: unknown;
  count: unknown;
}): Aggregate => ({
  key: row.key,
  min: Number(row.min),
  max: Number(row.max),
  sum: Number(row.sum),
  count: Number(row.count),
});

/** Raw readings in [from, to) grouped into UTC buckets. */
export async function readingBuckets(db: Executor, r: Range, size: BucketSize) {
  const key = sql<string>`substr(measured_at, 1, ${sql.lit(keyLength[size])})`;
  const rows = await db
    .selectFrom("readings")
    .select((eb) => [
      key.as("key"),
      eb.fn.min("value").as("min"),
      eb.fn.max("value").as("max"),
      eb.fn.sum("value").as("sum"),
      eb.fn.countAll().as("count"),
    ])
    .where("resident_id", "=", r.residentId)
    .where("type", "=", r.type)
    .where("measured_at", ">=", r.from)
    .where("measured_at", "<", r.to)
    .groupBy(key)
    .orderBy(key)
    .execute();
  return rows.map(toAggregate);
}

/**
 * Hourly rollups whose hour starts in [from, to), merged into buckets of `size` (a minute
 * asked for is answered by its hour: nothing finer is kept).
 */
export async function rollupBuckets(db: Executor, r: Range, size: BucketSize) {
  const key = sql<string>`substr(hour_start, 1, ${sql.lit(Math.min(keyLength[size], keyLength.hour))})`;
  const rows = await withRollups(db)
    .selectFrom("reading_rollups")
    .select((eb) => [
      key.as("key"),
      eb.fn.min("value_min").as("min"),
      eb.fn.max("value_max").as("max"),
      eb.fn.sum("value_sum").as("sum"),
      eb.fn.sum("reading_count").as("count"),
    ])
    .where("resident_id", "=", r.residentId)
    .where("type", "=", r.type)
    .where("hour_start", ">=", r.from)
    .where("hour_start", "<", r.to)
    .groupBy(key)
    .orderBy(key)
    .execute();
  return rows.map(toAggregate);
}

/** Readings of the given types in [from, to), oldest first; at most `limit`. */
export async function readingsForExport(
  db: Executor,
  residentId: string,
  types: readonly string[],
  from: string,
  to: string,
  limit: number,
) {
  return db
    .selectFrom("readings")
    .select(["device_id", "msg_id", "type", "value", "unit", "measured_at", "received_at"])
    .where("resident_id", "=", residentId)
    .where("type", "in", types)
    .where("measured_at", ">=", from)
    .where("measured_at", "<", to)
    .orderBy("measured_at")
    .orderBy("device_id")
    .orderBy("msg_id")
    .orderBy("type")
    .limit(limit)
    .execute();
}

export async function residentIds(db: Executor): Promise<string[]> {
  const rows = await db.selectFrom("residents").select("id").orderBy("id").execute();
  return rows.map((r) => r.id);
}

/** The oldest and newest instants of one resident's readings of one type (index probes). */
export async function readingSpan(db: Executor, residentId: string, type: string) {
  const edge = (direction: "asc" | "desc") =>
    db
      .selectFrom("readings")
      .select("measured_at")
      .where("resident_id", "=", residentId)
      .where("type", "=", type)
      .orderBy("measured_at", direction)
      .limit(1)
      .executeTakeFirst();
  const oldest = await edge("asc");
  if (!oldest) return null;
  const newest = await edge("desc");
  return { oldest: oldest.measured_at, newest: newest?.measured_at ?? oldest.measured_at };
}

/**
 * Where a chunk of about `size` of the oldest readings before `before` ends: the instant of the
 * size-th of them (inclusive), or null when fewer remain (the chunk runs up to `before`).
 */
export async function chunkEnd(
  db: Executor,
  residentId: string,
  type: string,
  before: string,
  size: number,
): Promise<string | null> {
  const row = await db
    .selectFrom("readings")
    .select("measured_at")
    .where("resident_id", "=", residentId)
    .where("type", "=", type)
    .where("measured_at", "<", before)
    .orderBy("measured_at")
    .offset(size - 1)
    .limit(1)
    .executeTakeFirst();
  return row?.measured_at ?? null;
}

/**
 * Deletes one resident's readings of one type before `before` (and up to `through`, inclusive)
 * and answers exactly the rows it deleted: a reading stored meanwhile is neither lost nor
 * counted, and a second run deleting the same rows gets none of them.
 */
export async function deleteReadingsBefore(
  db: Executor,
  residentId: string,
  type: string,
  before: string,
  through: string | null,
) {
  let q = db
    .deleteFrom("readings")
    .where("resident_id", "=", residentId)
    .where("type", "=", type)
    .where("measured_at", "<", before);
  if (through !== null) q = q.where("measured_at", "<=", through);
  return q.returning(["value", "unit", "measured_at"]).execute();
}

export interface HourRollup {
  resident_id: string;
  type: string;
  hour_start: string;
  unit: string;
  reading_count: number;
  value_sum: number;
  value_min: number;
  value_max: number;
}

/** Adds hourly summaries, merging each into the hour's existing summary if there is one. */
export async function mergeRollups(db: Executor, rows: HourRollup[]): Promise<void> {
  if (rows.length === 0) return;
  await withRollups(db)
    .insertInto("reading_rollups")
    .values(rows)
    .onConflict((oc) =>
      oc.columns(["resident_id", "type", "hour_start"]).doUpdateSet({
        reading_count: sql`reading_rollups.reading_count + excluded.reading_count`,
        value_sum: sql`reading_rollups.value_sum + excluded.value_sum`,
        value_min: sql`case when excluded.value_min < reading_rollups.value_min then excluded.value_min else reading_rollups.value_min end`,
        value_max: sql`case when excluded.value_max > reading_rollups.value_max then excluded.value_max else reading_rollups.value_max end`,
      }),
    )
    .execute();
}
