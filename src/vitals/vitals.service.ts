// Reading a resident's vital signs: the latest of each type, a series for charts, a FHIR export.
// Every read is authorised ("readVitals") and audited ("vitals.read").
import { authorizeResident } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import type { Executor } from "../db/database";
import { canonicalUnit, type ReadingType, readingTypes } from "../devices/protocol";
import { AppError } from "../errors";
import type { Actor } from "../http/context";
import type { RequestCtx } from "../request-ctx";
import { exportedTypes, vitalsBundle } from "./fhir";
import {
  type Aggregate,
  type BucketSize,
  keyLength,
  latestReading,
  rawReadings,
  readingBuckets,
  readingsForExport,
  rollupBuckets,
} from "./vitals.repository";
import { MAX_FHIR_READINGS, MAX_RAW_POINTS, type SeriesBucket } from "./vitals.schemas";

type Ctx = RequestCtx & { actor: Actor };

function audit(db: Executor, ctx: Ctx, residentId: string, details: Record<string, unknown>) {
  return recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action: "vitals.read",
      entityType: "resident",
      entityId: residentId,
      residentId,
      requestId: ctx.requestId,
      details,
    },
    ctx.now,
  );
}

export async function readLatest(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "readVitals");
  const rows = await Promise.all(readingTypes.map((type) => latestReading(db, residentId, type)));
  const items = rows.flatMap((r) =>
    r
      ? [
          {
            type: r.type as ReadingType,
            value: Number(r.value),
            unit: r.unit,
            measuredAt: r.measured_at,
            deviceId: r.device_id,
          },
        ]
      : [],
  );
  await audit(db, ctx, residentId, { view: "latest" });
  return { residentId, items };
}

const sizeOf: Record<number, BucketSize> = { 16: "minute", 13: "hour", 10: "day" };
const startOf: Record<BucketSize, (key: string) => string> = {
  minute: (key) => `${key}:00.000Z`,
  hour: (key) => `${key}:00:00.000Z`,
  day: (key) => `${key}T00:00:00.000Z`,
};
const round = (v: number) => Math.round(v * 1000) / 1000;

/**
 * Raw buckets and rollup buckets side by side: a reading is either raw or rolled up, never
 * both, so adding them never counts one twice (an hour caught mid-rollup merges here).
 */
function mergeBuckets(...sources: Aggregate[][]) {
  const byKey = new Map<string, Aggregate>();
  for (const a of sources.flat()) {
    const b = byKey.get(a.key);
    if (!b) byKey.set(a.key, { ...a });
    else {
      b.count += a.count;
      b.sum += a.sum;
      b.min = Math.min(b.min, a.min);
      b.max = Math.max(b.max, a.max);
    }
  }
  return [...byKey.values()]
    .map((a) => {
      const size = sizeOf[a.key.length]!;
      return {
        start: startOf[size](a.key),
        size,
        min: a.min,
        mean: round(a.sum / a.count),
        max: a.max,
        sum: round(a.sum),
        count: a.count,
      };
    })
    .sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : keyOrder(x, y)));
}

// An hour of rollup and a minute within it start alike: the wider one first.
const keyOrder = (x: { size: BucketSize }, y: { size: BucketSize }) =>
  keyLength[x.size] - keyLength[y.size];

export interface SeriesQuery {
  type: ReadingType;
  from: string;
  to: string;
  bucket: SeriesBucket;
}

export async function readSeries(db: Executor, ctx: Ctx, residentId: string, q: SeriesQuery) {
  await authorizeResident(db, ctx.actor, residentId, "readVitals");
  const range = { residentId, type: q.type, from: q.from, to: q.to };
  let points: { measuredAt: string; value: number; deviceId: string }[] = [];
  let buckets: ReturnType<typeof mergeBuckets>;
  if (q.bucket === "raw") {
    const rows = await rawReadings(db, range, MAX_RAW_POINTS + 1);
    if (rows.length > MAX_RAW_POINTS) {
      throw new AppError(
        "validation_failed",
        `the range holds more than ${MAX_RAW_POINTS} readings: narrow it or ask for bucket=minute or hour`,
        {
          issues: [
            {
              path: "query.bucket",
              message: `raw answers at most ${MAX_RAW_POINTS} readings; this range holds more`,
            },
          ],
        },
      );
    }
    points = rows.map((r) => ({
      measuredAt: r.measured_at,
      value: Number(r.value),
      deviceId: r.device_id,
    }));
    buckets = mergeBuckets(await rollupBuckets(db, range, "hour"));
  } else {
    buckets = mergeBuckets(
      await readingBuckets(db, range, q.bucket),
      await rollupBuckets(db, range, q.bucket),
    );
  }
  await audit(db, ctx, residentId, {
    view: "series",
    type: q.type,
    bucket: q.bucket,
    from: q.from,
    to: q.to,
  });
  return {
    residentId,
    type: q.type,
    unit: canonicalUnit[q.type],
    bucket: q.bucket,
    from: q.from,
    to: q.to,
    points,
    buckets,
  };
}

export async function exportFhir(
  db: Executor,
  ctx: Ctx,
  residentId: string,
  q: { from: string; to: string },
) {
  await authorizeResident(db, ctx.actor, residentId, "readVitals");
  const rows = await readingsForExport(
    db,
    residentId,
    exportedTypes,
    q.from,
    q.to,
    MAX_FHIR_READINGS + 1,
  );
  if (rows.length > MAX_FHIR_READINGS) {
    throw new AppError(
      "validation_failed",
      `the range holds more than ${MAX_FHIR_READINGS} readings: export it in parts`,
      {
        issues: [
          {
            path: "query.to",
            message: `one export holds at most ${MAX_FHIR_READINGS} readings; this range holds more`,
          },
        ],
      },
    );
  }
  const bundle = vitalsBundle(residentId, rows, ctx.now);
  await audit(db, ctx, residentId, {
    view: "fhir",
    from: q.from,
    to: q.to,
    observations: bundle.entry.length,
  });
  return bundle;
}
