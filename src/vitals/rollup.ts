// Retention: readings older than `vitals.raw_retention_days` become hourly summaries
// (reading_rollups) and the raw rows go. Work is done per resident and type in small chunks, each
// its own transaction that summarises exactly the rows its DELETE ... RETURNING removed, so ingest
// (SQLite has one writer) never waits long behind it and neither a reading stored meanwhile, nor
// a crash, nor a second run can lose or double a reading. The hour of each type's newest reading
// stays raw, so "latest" always has an answer.
import type { Db } from "../db/database";
import { readingTypes } from "../devices/protocol";
import type { JobContext } from "../jobs/scheduler";
import { getSetting } from "../settings/settings.service";
import {
  chunkEnd,
  deleteReadingsBefore,
  type HourRollup,
  mergeRollups,
  readingSpan,
  residentIds,
} from "./vitals.repository";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface RollupOptions {
  retentionDays: number;
  /** Readings per transaction. */
  chunkSize?: number;
  /** Stop after this long; the next run carries on where this one stopped. */
  budgetMs?: number;
}

export interface RollupResult {
  readings: number;
  chunks: number;
  cutoff: string;
  finished: boolean;
}

/** The start of the UTC hour an ISO-8601 instant falls in. */
export const hourOf = (instant: string) => `${instant.slice(0, 13)}:00:00.000Z`;

export function retentionCutoff(now: Date, retentionDays: number): string {
  return hourOf(new Date(now.getTime() - retentionDays * DAY).toISOString());
}

const yieldToOthers = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function rollUpOldReadings(
  db: Db,
  now: Date,
  options: RollupOptions,
): Promise<RollupResult> {
  const chunkSize = options.chunkSize ?? 1_000;
  const deadline = performance.now() + (options.budgetMs ?? 30_000);
  const cutoff = retentionCutoff(now, options.retentionDays);
  const result: RollupResult = { readings: 0, chunks: 0, cutoff, finished: true };

  for (const residentId of await residentIds(db)) {
    for (const type of readingTypes) {
      const span = await readingSpan(db, residentId, type);
      if (!span || span.oldest >= cutoff) continue;
      // ISO instants: the earlier of the two sorts first.
      const [keepFrom] = [cutoff, hourOf(span.newest)].sort() as [string, string];
      for (;;) {
        const { moved, more } = await rollUpChunk(db, residentId, type, keepFrom, chunkSize);
        result.readings += moved;
        if (moved > 0) result.chunks += 1;
        if (!more) break;
        // At least one chunk per run, so even a tiny budget makes progress.
        if (performance.now() > deadline) return { ...result, finished: false };
        await yieldToOthers();
      }
    }
  }
  return result;
}

/** Deletes about `size` of the oldest readings before `before` and adds them to the rollups. */
async function rollUpChunk(
  db: Db,
  residentId: string,
  type: string,
  before: string,
  size: number,
): Promise<{ moved: number; more: boolean }> {
  return db.transaction().execute(async (trx) => {
    const through = await chunkEnd(trx, residentId, type, before, size);
    const rows = await deleteReadingsBefore(trx, residentId, type, before, through);
    const hours = new Map<string, HourRollup>();
    for (const row of rows) {
      const value = Number(row.value);
      const hour_start = hourOf(row.measured_at);
      const h = hours.get(hour_start);
      if (!h) {
        hours.set(hour_start, {
          resident_id: residentId,
          type,
          hour_start,
          unit: row.unit,
          reading_count: 1,
          value_sum: value,
          value_min: value,
          value_max: value,
        });
      } else {
        h.reading_count += 1;
        h.value_sum += value;
        if (value < h.value_min) h.value_min = value;
        if (value > h.value_max) h.value_max = value;
      }
    }
    await mergeRollups(trx, [...hours.values()]);
    return { moved: rows.length, more: through !== null };
  });
}

/** The durable recurring job (registered in system.ts). */
export const vitalsRollupJob = {
  kind: "vitals.rollup",
  everyMs: HOUR,
  async run(ctx: JobContext): Promise<void> {
    const retentionDays = await getSetting(ctx.db, "vitals.raw_retention_days");
    const result = await rollUpOldReadings(ctx.db, ctx.clock.now(), { retentionDays });
    if (result.readings > 0 || !result.finished) {
      ctx.logger.info(result, "rolled up readings older than the raw retention");
    }
  },
};
