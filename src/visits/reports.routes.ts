// The care log, the monthly report (JSON or CSV) and the EVV export of verified visits (CSV).
import { createRoute } from "@hono/zod-openapi";
import type { Db } from "../db/database";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonResponse, z } from "../http/router";
import { LocalDate } from "../validation";
import {
  careLog,
  evvColumns,
  evvExport,
  MAX_EVV_ROWS,
  MAX_RANGE_DAYS,
  monthlyReport,
  monthlyReportCsv,
} from "./reports";

const tags = ["Visits"];
const ResidentParams = z.object({ residentId: z.string().max(64) });
const Any = z.object({}).passthrough();
const CSV = "text/csv; charset=utf-8";

const Month = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])$/, { message: "a month as YYYY-MM (01 to 12)" })
  .openapi({ example: "2026-11" });

const csvOrJson = (description: string) => ({
  description,
  content: { "application/json": { schema: Any }, "text/csv": { schema: z.string() } },
});

export function visitReportsRoutes(deps: AppDeps) {
  const app = createRouter();
  const db: Db = deps.db;

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/care-log",
      tags,
      summary:
        "The family's care log: each visit with what was done, the alerts, and the vital signs of a period (audited)",
      description: [
        "from and to are local dates in the resident's time zone, both included (default: the",
        "30 days up to today; from alone: 30 days from it); at most",
        `${MAX_RANGE_DAYS} days. items are in time order: { type: "visit", at, localDate,`,
        'localTime, visit } at the visit\'s scheduled start, { type: "alert", at, localDate,',
        "localTime, alert } when the alert opened. A visit has its status and state, scheduled",
        "start and end, check-in and check-out (time, how presence was proven, any exception and",
        "the worker's reason), the worker, the service, each task and medication with its",
        "outcome and reason, and the notes and wellbeing of the check-out. vitals summarises",
        "each type of reading (count, min, max, mean; readings outside the care plan's normal",
        "range, judged on raw readings only).",
      ].join(" "),
      request: {
        params: ResidentParams,
        query: z.object({ from: LocalDate.optional(), to: LocalDate.optional() }),
      },
      responses: { 200: jsonResponse(Any, "The care log"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await careLog(
          db,
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
      path: "/residents/{residentId}/reports/monthly",
      tags,
      summary:
        "A month of care counted: visits, hours of care, tasks, medications, alerts, vital signs (JSON or CSV, audited)",
      description: [
        "month is YYYY-MM in the resident's time zone (default: this month). Visits are those",
        "whose local date is in the month; each is counted in exactly one of completed (verified",
        "or released), disputed, missed (nobody checked in), cancelled, refunded, inProgress and",
        "upcoming, which add up to scheduled. care.minutes and care.hours sum check-in to",
        "check-out. Tasks and medications count the visits a worker checked in to. alerts are",
        "those opened in the month, all and by kind, each by severity. format=csv gives the",
        "same figures, one per row: section,item,metric,value (item is empty for a section's own",
        "figures, the alert kind or 'all' for alerts, the reading type for vitals; metric names",
        "are the JSON's).",
      ].join(" "),
      request: {
        params: ResidentParams,
        query: z.object({
          month: Month.optional(),
          format: z.enum(["json", "csv"]).default("json"),
        }),
      },
      responses: { 200: csvOrJson("The monthly report"), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const report = await monthlyReport(
        db,
        authedCtx(c, deps),
        c.req.valid("param").residentId,
        q.month,
      );
      if (q.format === "csv") {
        return c.body(monthlyReportCsv(report), 200, {
          "content-type": CSV,
          "content-disposition": `attachment; filename="care-report-${report.month}.csv"`,
        });
      }
      return c.json(report, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/evv/visits.csv",
      tags,
      summary:
        "Electronic visit verification: the verified visits of a provider or a resident, one CSV row each (audited)",
      description: [
        "Visits verified, released or disputed (each has a check-in and a check-out) whose local",
        `date is in from..to (both included, at most ${MAX_RANGE_DAYS} days, at most`,
        `${MAX_EVV_ROWS} rows), oldest first. Name one of providerId (operators, the provider's`,
        "admins) or residentId (operators, the resident's primary family members). Each row has",
        "the six elements: the type of service, the person served, the date of service (local",
        "date of the check-in), the location (latitude and longitude of the check-in and the",
        "check-out, or 'no position'), the person serving (as registered at check-in), the start",
        "and end time (ISO-8601 UTC), with how each entry was proven, whether it was verified,",
        "any exception and its reason, and whether it was captured offline. Text a spreadsheet",
        "would run as a formula is prefixed with an apostrophe. Columns:",
        `${evvColumns.join(", ")}.`,
      ].join(" "),
      request: {
        query: z
          .object({
            from: LocalDate,
            to: LocalDate,
            providerId: z.string().min(1).max(64).optional(),
            residentId: z.string().min(1).max(64).optional(),
          })
          .superRefine((q, ctx) => {
            if (!q.providerId === !q.residentId) {
              ctx.addIssue({
                code: "custom",
                path: ["providerId"],
                message: "name one of providerId or residentId",
              });
            }
          }),
      },
      responses: {
        200: { description: "The visits", content: { "text/csv": { schema: z.string() } } },
        ...errorResponses,
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const { csv } = await evvExport(db, authedCtx(c, deps), q);
      return c.body(csv, 200, {
        "content-type": CSV,
        "content-disposition": `attachment; filename="evv-visits-${q.from}-${q.to}.csv"`,
      });
    },
  );

  return app;
}
