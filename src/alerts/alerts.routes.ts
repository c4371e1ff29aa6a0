import { createRoute } from "@hono/zod-openapi";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import {
  acknowledgeAlert,
  addNote,
  getAlert,
  listAlerts,
  resolveAlert,
  resolveOutcomes,
} from "./alerts.service";
import { alertSeverities, alertStatuses } from "./alerts.table";

const tags = ["Alerts"];
const Params = z.object({ alertId: z.string().max(64) });

const AlertSchema = z
  .object({
    id: z.string(),
    residentId: z.string(),
    kind: z.string().openapi({ example: "sos" }),
    severity: z.enum(alertSeverities),
    status: z.enum(alertStatuses),
    sourceType: z.string(),
    sourceId: z.string().nullable(),
    summary: z.string(),
    details: z.record(z.string(), z.unknown()).nullable(),
    openedAt: z.string(),
    updatedAt: z.string(),
    acknowledgedAt: z.string().nullable(),
    acknowledgedBy: z.string().nullable(),
    closedAt: z.string().nullable(),
    closedBy: z.string().nullable(),
    closeReason: z.string().nullable(),
  })
  .openapi("Alert");

const AlertWithTimeline = AlertSchema.extend({
  timeline: z.array(
    z.object({
      id: z.string(),
      at: z.string(),
      type: z.string(),
      actor: z.object({ id: z.string(), displayName: z.string() }).nullable(),
      details: z.record(z.string(), z.unknown()).nullable(),
    }),
  ),
}).openapi("AlertWithTimeline");

export function alertsRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/alerts",
      tags,
      summary: "Alerts I may see, newest first (operators: the whole desk)",
      request: {
        query: z.object({
          residentId: z.string().max(64).optional(),
          status: z
            .string()
            .optional()
            .transform((v) => (v ? v.split(",") : undefined))
            .pipe(z.array(z.enum(alertStatuses)).optional())
            .openapi({
              type: "string",
              description: "Comma-separated statuses, e.g. open,acknowledged",
            }),
          severity: z.enum(alertSeverities).optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().max(64).optional(),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({ items: z.array(AlertSchema), nextCursor: z.string().nullable() }),
          "Alerts",
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { cursor, ...q } = c.req.valid("query");
      return c.json(await listAlerts(deps.db, authedCtx(c, deps), { ...q, before: cursor }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/alerts/{alertId}",
      tags,
      summary: "One alert with its timeline",
      request: { params: Params },
      responses: { 200: jsonResponse(AlertWithTimeline, "The alert"), ...errorResponses },
    }),
    async (c) =>
      c.json(await getAlert(deps.db, authedCtx(c, deps), c.req.valid("param").alertId), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/alerts/{alertId}/acknowledge",
      tags,
      summary: "Take charge of an alert",
      request: {
        params: Params,
        ...jsonBody(z.strictObject({ note: z.string().trim().max(500).optional() })),
      },
      responses: {
        200: jsonResponse(
          AlertWithTimeline.extend({
            accessNotes: z
              .string()
              .nullable()
              .openapi({ description: "Key safe, door code: for the person who took charge" }),
          }),
          "Acknowledged: the person who took charge gets the access notes",
        ),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await acknowledgeAlert(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").alertId,
          c.req.valid("json").note,
          deps.alerting.ack,
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/alerts/{alertId}/resolve",
      tags,
      summary: "Close an alert with what happened",
      request: {
        params: Params,
        ...jsonBody(
          z.strictObject({
            outcome: z.enum(resolveOutcomes),
            note: z.string().trim().max(2000).optional(),
          }),
        ),
      },
      responses: { 200: jsonResponse(AlertWithTimeline, "Resolved"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await resolveAlert(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").alertId,
          c.req.valid("json").outcome,
          c.req.valid("json").note,
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/alerts/{alertId}/notes",
      tags,
      summary: "Add a note to an alert's timeline",
      request: {
        params: Params,
        ...jsonBody(z.strictObject({ note: z.string().trim().min(1).max(2000) })),
      },
      responses: { 200: jsonResponse(AlertWithTimeline, "Noted"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await addNote(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").alertId,
          c.req.valid("json").note,
        ),
        200,
      ),
  );

  return app;
}
