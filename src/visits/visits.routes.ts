import { createRoute } from "@hono/zod-openapi";
import { authorizeResident } from "../access/access";
import { refundMissedVisit } from "../bookings/bookings.service";
import type { Db } from "../db/database";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { once } from "../ledger/idempotency";
import { Instant, LocalDate, LocalTime } from "../validation";
import { checkIn, checkOut, entryLog, recordOutcomes } from "./entries";
import {
  assignWorker,
  confirmPresenceCode,
  getVisit,
  listVisits,
  requestPresenceCode,
  revealAccessNotes,
  workerDay,
} from "./visits.service";
import { outcomes } from "./visits.table";

const tags = ["Visits"];
const VisitParams = z.object({ visitId: z.string().max(64) });
const Any = z.object({}).passthrough();

const ClientId = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .openapi({ description: "Made by the phone; sending the same entry twice records it once" });

const PositionSchema = z
  .strictObject({
    latitude: z.number().min(-90).max(90),
    longitude: z.number().min(-180).max(180),
    accuracy: z
      .number()
      .min(0)
      .max(100_000)
      .openapi({ description: "The phone's reported accuracy in metres" }),
  })
  .openapi("Position");

const entryFields = {
  clientId: ClientId,
  occurredAt: Instant.optional().openapi({
    description: "When it happened by the phone's clock (an entry captured offline); default now",
  }),
  capturedOffline: z.boolean().optional(),
  position: PositionSchema.optional(),
  code: z
    .string()
    .trim()
    .regex(/^\d{6}$/, { message: "six digits" })
    .optional()
    .openapi({ description: "A code the home device showed, or one the family confirmed" }),
  exceptionReason: z.string().trim().min(3).max(1000).optional().openapi({
    description: "Needed when the entry has no proof (outside the radius, no position, no code)",
  }),
};

const OutcomeSchema = z
  .strictObject({
    kind: z.enum(["task", "medication"]),
    itemId: z.string().min(1).max(64),
    dueTime: z.union([LocalTime, z.literal("")]),
    outcome: z.enum(outcomes),
    reason: z.string().trim().max(1000).optional(),
  })
  .refine((o) => o.outcome === "done" || (o.reason && o.reason.length > 0), {
    message: "give a reason when it was not done",
    path: ["reason"],
  })
  .openapi("VisitOutcome");

export function visitsRoutes(deps: AppDeps) {
  const app = createRouter();
  const db: Db = deps.db;

  app.openapi(
    createRoute({
      method: "get",
      path: "/visits",
      tags,
      summary:
        "Visits of a resident (the family) or a provider (its admins), or all (operators), between two local dates",
      request: {
        query: z.object({
          residentId: z.string().max(64).optional(),
          providerId: z.string().max(64).optional(),
          from: LocalDate,
          to: LocalDate,
          unassigned: z
            .enum(["true", "false"])
            .transform((v) => v === "true")
            .optional(),
        }),
      },
      responses: {
        200: jsonResponse(z.object({ items: z.array(Any) }), "Visits"),
        ...errorResponses,
      },
    }),
    async (c) => c.json(await listVisits(db, authedCtx(c, deps), c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/me/visits",
      tags,
      summary:
        "The signed-in worker's visits on a day (default today), in order: where, what to do, and what was done",
      request: { query: z.object({ date: LocalDate.optional() }) },
      responses: { 200: jsonResponse(Any, "The worker's day"), ...errorResponses },
    }),
    async (c) => c.json(await workerDay(db, authedCtx(c, deps), c.req.valid("query").date), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/visits/{visitId}",
      tags,
      summary:
        "A visit: its worker, tasks and medications with their outcomes, check-in and check-out",
      request: { params: VisitParams },
      responses: { 200: jsonResponse(Any, "The visit"), ...errorResponses },
    }),
    async (c) => c.json(await getVisit(db, authedCtx(c, deps), c.req.valid("param").visitId), 200),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/visits/{visitId}/worker",
      tags,
      summary:
        "The provider assigns a worker to the visit, or to it and the rest of its series; a replacement is told to the family",
      request: {
        params: VisitParams,
        ...jsonBody(
          z.strictObject({
            workerId: z.string().min(1).max(64),
            scope: z.enum(["visit", "series"]).default("visit"),
          }),
        ),
      },
      responses: { 200: jsonResponse(Any, "Assigned"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const { visitId } = c.req.valid("param");
      const body = c.req.valid("json");
      const result = await db.transaction().execute((trx) => assignWorker(trx, ctx, visitId, body));
      deps.scheduler.nudge();
      return c.json(result, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/visits/{visitId}/access-notes",
      tags,
      summary:
        "The home's access notes (key safe, door code): to the visit's worker between check-in and check-out only, audited",
      request: { params: VisitParams },
      responses: { 200: jsonResponse(Any, "The access notes"), ...errorResponses },
    }),
    async (c) =>
      c.json(await revealAccessNotes(db, authedCtx(c, deps), c.req.valid("param").visitId), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/presence-codes",
      tags,
      summary:
        "The worker asks for a one-time code: shown by the home device (show_code), or to be confirmed by the family",
      request: {
        params: VisitParams,
        ...jsonBody(z.strictObject({ via: z.enum(["device", "family"]) })),
      },
      responses: { 201: jsonResponse(Any, "The code is on its way"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const { visitId } = c.req.valid("param");
      const { via } = c.req.valid("json");
      const made = await db
        .transaction()
        .execute((trx) => requestPresenceCode(trx, ctx, visitId, via));
      deps.scheduler.nudge();
      // After the commit: no network call inside a transaction.
      let shownOn = 0;
      if (made.send) {
        for (const deviceId of made.deviceIds) {
          try {
            await deps.devices.sendCommand(deviceId, "show_code", {
              code: made.send.code,
              expiresAt: made.send.expiresAt,
            });
            shownOn += 1;
          } catch (error) {
            c.var.logger.warn({ err: error, deviceId }, "could not send show_code");
          }
        }
      }
      const { send: _secret, ...answer } = made;
      return c.json({ ...answer, sentToDevices: shownOn }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/presence-codes/confirm",
      tags,
      summary: "A family member or the resident confirms the code the worker at the door gave them",
      request: {
        params: VisitParams,
        ...jsonBody(
          z.strictObject({
            code: z
              .string()
              .trim()
              .regex(/^\d{6}$/, "six digits"),
          }),
        ),
      },
      responses: { 200: jsonResponse(Any, "Confirmed"), ...errorResponses },
    }),
    async (c) => {
      const { visitId } = c.req.valid("param");
      return c.json(
        await confirmPresenceCode(db, authedCtx(c, deps), visitId, c.req.valid("json").code),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/check-in",
      tags,
      summary:
        "The worker checks in at the home, proven by position or a code; without proof it needs a reason and is flagged",
      request: { params: VisitParams, ...jsonBody(z.strictObject(entryFields)) },
      responses: {
        201: jsonResponse(Any, "Checked in"),
        200: jsonResponse(Any, "Already recorded (the same clientId)"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const result = await checkIn(db, ctx, c.req.valid("param").visitId, c.req.valid("json"));
      deps.scheduler.nudge();
      return c.json(result, result.duplicate ? 200 : 201);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/visits/{visitId}/outcomes",
      tags,
      summary: "The worker ticks off tasks and medications during the visit",
      request: {
        params: VisitParams,
        ...jsonBody(z.strictObject({ outcomes: z.array(OutcomeSchema).min(1).max(200) })),
      },
      responses: {
        200: jsonResponse(Any, "The visit's items with their outcomes"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await recordOutcomes(
          db,
          authedCtx(c, deps),
          c.req.valid("param").visitId,
          c.req.valid("json").outcomes,
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/check-out",
      tags,
      summary:
        "The worker checks out: an outcome for every task and medication, notes and wellbeing; the visit is verified",
      request: {
        params: VisitParams,
        ...jsonBody(
          z.strictObject({
            ...entryFields,
            outcomes: z.array(OutcomeSchema).max(200).optional(),
            notes: z.string().trim().min(1).max(5000),
            wellbeing: z.strictObject({
              mood: z.enum(["good", "okay", "low", "distressed"]),
              appetite: z.enum(["good", "reduced", "poor", "not_observed"]),
              concerns: z.string().trim().max(2000),
            }),
            durationComment: z.string().trim().min(3).max(1000).optional(),
          }),
        ),
      },
      responses: {
        201: jsonResponse(Any, "Checked out and verified"),
        200: jsonResponse(Any, "Already recorded (the same clientId)"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const result = await checkOut(db, ctx, c.req.valid("param").visitId, c.req.valid("json"));
      deps.scheduler.nudge();
      return c.json(result, result.duplicate ? 200 : 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/missed-refund",
      tags,
      summary:
        "Nobody came: the family (or an operator) takes a missed visit's money back in full (Idempotency-Key)",
      request: { params: VisitParams },
      responses: { 200: jsonResponse(Any, "Refunded"), ...errorResponses },
    }),
    async (c) => {
      const { visitId } = c.req.valid("param");
      return c.json(
        await once(c, deps, "visit-missed-refund", [visitId], 200, (trx, ctx) =>
          refundMissedVisit(trx, visitId, ctx, ctx.now),
        ),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/entries",
      tags,
      summary: "The home's entry log: who checked in and out, when, and how it was proven",
      request: {
        params: z.object({ residentId: z.string().max(64) }),
        query: z.object({ from: Instant.optional(), to: Instant.optional() }),
      },
      responses: {
        200: jsonResponse(z.object({ items: z.array(Any) }), "Entries"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const { residentId } = c.req.valid("param");
      const q = c.req.valid("query");
      await authorizeResident(db, ctx.actor, residentId, "view");
      const to = q.to ?? new Date(ctx.now.getTime() + 86_400_000).toISOString();
      const from = q.from ?? new Date(Date.parse(to) - 30 * 86_400_000).toISOString();
      return c.json({ items: await entryLog(db, residentId, { from, to }) }, 200);
    },
  );

  return app;
}
