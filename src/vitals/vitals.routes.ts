import { createRoute } from "@hono/zod-openapi";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonResponse, z } from "../http/router";
import {
  FhirBundleSchema,
  FhirQuery,
  LatestVitalsSchema,
  MAX_FHIR_READINGS,
  MAX_RAW_POINTS,
  maxRangeDays,
  SeriesQuery,
  VitalSeriesSchema,
} from "./vitals.schemas";
import { exportFhir, readLatest, readSeries } from "./vitals.service";

const tags = ["Vitals"];
const Params = z.object({ residentId: z.string().max(64) });
const FHIR_JSON = "application/fhir+json; charset=utf-8";

export function vitalsRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/vitals/latest",
      tags,
      summary: "The latest reading of each type (reads are audited)",
      description:
        "Values in canonical UCUM units; blood pressure is two types, systolic and diastolic.",
      request: { params: Params },
      responses: {
        200: jsonResponse(LatestVitalsSchema, "Latest readings, one per type"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(await readLatest(deps.db, authedCtx(c, deps), c.req.valid("param").residentId), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/vitals/series",
      tags,
      summary: "One vital over a range, raw or bucketed for charts (reads are audited)",
      description: [
        "Readings with from <= measuredAt < to. bucket=raw lists them (at most",
        `${MAX_RAW_POINTS}; more is a 400); minute, hour and day give min, mean, max, sum and count`,
        "per bucket. Buckets are aligned in UTC (a day is a UTC day, not the resident's).",
        `Longest range: raw ${maxRangeDays.raw} days, minute ${maxRangeDays.minute},`,
        `hour ${maxRangeDays.hour}, day ${maxRangeDays.day}.`,
        "Readings older than the raw retention (setting vitals.raw_retention_days) are kept as",
        "hourly summaries: those hours answer as size=hour buckets (an hour counts when it starts",
        "inside the range). Blood pressure is two types, systolic and diastolic.",
      ].join(" "),
      request: { params: Params, query: SeriesQuery },
      responses: { 200: jsonResponse(VitalSeriesSchema, "The series"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await readSeries(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").residentId,
          c.req.valid("query"),
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/vitals/fhir",
      tags,
      summary: "Vital signs as a FHIR R4 Bundle of Observations, for clinical systems (audited)",
      description: [
        "A Bundle of type collection: one Observation per reading, category vital-signs, LOINC",
        "code, UCUM valueQuantity, subject Patient/{residentId}, device Device/{deviceId};",
        "blood pressure as one 85354-9 panel with systolic and diastolic components. Observation",
        "ids are stable across exports. Only raw readings are exported (not the hourly summaries",
        `kept beyond the retention), at most ${MAX_FHIR_READINGS} over at most`,
        `${maxRangeDays.fhir} days. Step counts are activity, not vital signs, and are left out.`,
      ].join(" "),
      request: { params: Params, query: FhirQuery },
      responses: {
        200: {
          description: "The Bundle (application/fhir+json)",
          content: { "application/fhir+json": { schema: FhirBundleSchema } },
        },
        ...errorResponses,
      },
    }),
    async (c) => {
      const bundle = await exportFhir(
        deps.db,
        authedCtx(c, deps),
        c.req.valid("param").residentId,
        c.req.valid("query"),
      );
      // c.json keeps a content type it is given: FHIR's own media type, as clients expect.
      return c.json(bundle, 200, { "content-type": FHIR_JSON });
    },
  );

  return app;
}
