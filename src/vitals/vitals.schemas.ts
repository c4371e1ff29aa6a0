import { z } from "@hono/zod-openapi";
import { readingTypes } from "../devices/protocol";
import { Instant } from "../validation";

export const seriesBuckets = ["raw", "minute", "hour", "day"] as const;
export type SeriesBucket = (typeof seriesBuckets)[number];

const DAY = 86_400_000;

/** The longest range each view answers: a chart's worth of points, never a table scan. */
export const maxRangeDays: Record<SeriesBucket | "fhir", number> = {
  raw: 31,
  minute: 7,
  hour: 366,
  day: 3_660,
  fhir: 92,
};
export const MAX_RAW_POINTS = 10_000;
export const MAX_FHIR_READINGS = 20_000;

const ReadingType = z
  .enum(readingTypes, {
    error: `one of ${readingTypes.join(", ")} (blood pressure is two types: systolic and diastolic)`,
  })
  .openapi({ example: "heart_rate" });

function checkRange(
  q: { from: string; to: string },
  limit: { days: number; what: string; otherwise: string },
  ctx: z.RefinementCtx,
) {
  const span = Date.parse(q.to) - Date.parse(q.from);
  if (span <= 0) {
    ctx.addIssue({ code: "custom", path: ["to"], message: "must be after from" });
  } else if (span > limit.days * DAY) {
    ctx.addIssue({
      code: "custom",
      path: ["to"],
      message: `the range is ${Math.ceil(span / DAY)} days, but ${limit.what} covers at most ${limit.days}: ${limit.otherwise}`,
    });
  }
}

const rangeFields = {
  from: Instant.openapi({ description: "Start of the range (inclusive), ISO-8601 with a zone" }),
  to: Instant.openapi({ description: "End of the range (exclusive), ISO-8601 with a zone" }),
};

export const SeriesQuery = z
  .object({
    type: ReadingType,
    ...rangeFields,
    bucket: z.enum(seriesBuckets).default("raw").openapi({
      description:
        "raw: every reading; minute, hour, day: min/mean/max/count per bucket, aligned in UTC",
    }),
  })
  .superRefine((q, ctx) =>
    checkRange(
      q,
      {
        days: maxRangeDays[q.bucket],
        what: `bucket=${q.bucket}`,
        otherwise: q.bucket === "day" ? "narrow it" : "narrow it or ask for a coarser bucket",
      },
      ctx,
    ),
  );

export const FhirQuery = z
  .object(rangeFields)
  .superRefine((q, ctx) =>
    checkRange(
      q,
      { days: maxRangeDays.fhir, what: "one export", otherwise: "export it in parts" },
      ctx,
    ),
  );

export const LatestVitalsSchema = z
  .object({
    residentId: z.string(),
    items: z.array(
      z.object({
        type: z.enum(readingTypes),
        value: z.number(),
        unit: z.string().openapi({ description: "UCUM", example: "/min" }),
        measuredAt: z.string(),
        deviceId: z.string(),
      }),
    ),
  })
  .openapi("LatestVitals");

export const VitalSeriesSchema = z
  .object({
    residentId: z.string(),
    type: z.enum(readingTypes),
    unit: z.string().openapi({ description: "UCUM", example: "/min" }),
    bucket: z.enum(seriesBuckets),
    from: z.string(),
    to: z.string(),
    points: z
      .array(z.object({ measuredAt: z.string(), value: z.number(), deviceId: z.string() }))
      .openapi({ description: "bucket=raw: the readings, oldest first; otherwise empty" }),
    buckets: z
      .array(
        z.object({
          start: z.string().openapi({ description: "UTC start of the bucket" }),
          size: z.enum(["minute", "hour", "day"]),
          min: z.number(),
          mean: z.number(),
          max: z.number(),
          sum: z.number(),
          count: z.number().int(),
        }),
      )
      .openapi({
        description:
          "Summaries, oldest first. Where readings are older than the raw retention only hourly " +
          "summaries remain: those hours come as size=hour buckets even for bucket=raw or minute",
      }),
  })
  .openapi("VitalSeries");

export const FhirBundleSchema = z
  .looseObject({
    resourceType: z.literal("Bundle"),
    type: z.literal("collection"),
    timestamp: z.string(),
    entry: z.array(
      z.object({
        fullUrl: z.string(),
        resource: z.record(z.string(), z.unknown()).openapi({ description: "An Observation" }),
      }),
    ),
  })
  .openapi("FhirBundle");
