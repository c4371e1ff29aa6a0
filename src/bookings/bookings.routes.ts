import { createRoute } from "@hono/zod-openapi";
import { z as zod } from "zod";
import type { Db } from "../db/database";
import { authedCtx, requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { defineRecurring } from "../jobs/recurring";
import type { Scheduler } from "../jobs/scheduler";
import { once } from "../ledger/idempotency";
import {
  ACCEPT_DEADLINE_JOB,
  acceptanceDeadline,
  answerBooking,
  cancelVisits,
  createBooking,
  decideDispute,
  getBooking,
  listBookings,
  providerFailed,
  RELEASE_JOB,
  recordPayout,
  releaseVisit,
  reviewVisit,
  rollSeries,
} from "./bookings.service";
import { ScheduleSchema } from "./schedule";
import { settlement, settlementCsv } from "./settlement";
import { tellWalletShort } from "./wallet-short";

const tags = ["Bookings"];
const BookingParams = z.object({ bookingId: z.string().max(64) });
const VisitParams = z.object({ visitId: z.string().max(64) });
const Any = z.object({}).passthrough();

/** Durable timers of the marketplace: the provider's answer deadline, the end of a review window. */
export async function registerBookingJobs(scheduler: Scheduler, db: Db) {
  await defineRecurring(scheduler, db, {
    kind: "bookings.roll_series",
    everyMs: 3_600_000,
    firstInMs: 60_000,
    async run(ctx) {
      const created = await rollSeries(ctx.db, ctx.clock.now(), async (booking, needed) => {
        await tellWalletShort(ctx.db, booking, needed, ctx.clock.now());
      });
      if (created > 0) ctx.logger.info({ created }, "series rolled forward");
    },
  });
  scheduler.define({
    kind: ACCEPT_DEADLINE_JOB,
    payload: zod.object({ bookingId: zod.string() }),
    maxAttempts: 1_000_000,
    async handler(ctx, { bookingId }) {
      await ctx.db.transaction().execute(async (trx) => {
        await acceptanceDeadline(trx, bookingId, ctx.clock.now());
        await ctx.completeWithin(trx);
      });
    },
  });
  scheduler.define({
    kind: RELEASE_JOB,
    payload: zod.object({ visitId: zod.string() }),
    maxAttempts: 1_000_000,
    async handler(ctx, { visitId }) {
      await ctx.db.transaction().execute(async (trx) => {
        await releaseVisit(trx, visitId, null, ctx.clock.now());
        await ctx.completeWithin(trx);
      });
    },
  });
}

export function bookingsRoutes(deps: AppDeps) {
  const app = createRouter();
  const db: Db = deps.db;

  app.openapi(
    createRoute({
      method: "post",
      path: "/bookings",
      tags,
      summary:
        "Book a service for a resident (Idempotency-Key): each visit's price goes into escrow",
      request: {
        ...jsonBody(
          z.strictObject({
            residentId: z.string().min(1).max(64),
            serviceId: z.string().min(1).max(64),
            schedule: ScheduleSchema,
            notes: z.string().trim().max(2000).optional(),
          }),
        ),
      },
      responses: {
        201: jsonResponse(Any, "Booked: the provider is asked to accept"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const booking = await once(c, deps, "booking", body, 201, (trx, ctx) =>
        createBooking(trx, ctx, body),
      );
      return c.json(booking, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/bookings",
      tags,
      summary: "Bookings of a resident, or of a provider (its admins), or all (operators)",
      request: {
        query: z.object({
          residentId: z.string().max(64).optional(),
          providerId: z.string().max(64).optional(),
          status: z.enum(["pending", "accepted", "declined", "cancelled"]).optional(),
        }),
      },
      responses: {
        200: jsonResponse(z.object({ items: z.array(Any) }), "Bookings"),
        ...errorResponses,
      },
    }),
    async (c) => c.json(await listBookings(db, authedCtx(c, deps), c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/bookings/{bookingId}",
      tags,
      summary: "A booking with its visits",
      request: { params: BookingParams },
      responses: { 200: jsonResponse(Any, "The booking"), ...errorResponses },
    }),
    async (c) =>
      c.json(await getBooking(db, authedCtx(c, deps), c.req.valid("param").bookingId), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/bookings/{bookingId}/answer",
      tags,
      summary: "The provider accepts or declines (Idempotency-Key); declining refunds every visit",
      request: {
        params: BookingParams,
        ...jsonBody(
          z
            .strictObject({
              accept: z.boolean(),
              reason: z.string().trim().min(1).max(500).optional(),
            })
            .refine((a) => a.accept || a.reason, {
              message: "a decline needs a reason",
              path: ["reason"],
            }),
        ),
      },
      responses: { 200: jsonResponse(Any, "Answered"), ...errorResponses },
    }),
    async (c) => {
      const { bookingId } = c.req.valid("param");
      const body = c.req.valid("json");
      return c.json(
        await once(c, deps, "booking-answer", [bookingId, body], 200, (trx, ctx) =>
          answerBooking(trx, ctx, bookingId, body),
        ),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/bookings/{bookingId}/cancel",
      tags,
      summary:
        "The family cancels one visit (visitId) or the rest of the series (Idempotency-Key): in time a full refund, later a fee",
      request: {
        params: BookingParams,
        ...jsonBody(
          z.strictObject({
            visitId: z.string().max(64).optional(),
            reason: z.string().trim().min(1).max(500),
          }),
        ),
      },
      responses: { 200: jsonResponse(Any, "Cancelled, with what was refunded"), ...errorResponses },
    }),
    async (c) => {
      const { bookingId } = c.req.valid("param");
      const body = c.req.valid("json");
      return c.json(
        await once(c, deps, "booking-cancel", [bookingId, body], 200, (trx, ctx) =>
          cancelVisits(trx, ctx, { bookingId, ...body }),
        ),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/provider-failure",
      tags,
      summary:
        "The provider cancels a visit, or an operator records a no-show (Idempotency-Key): full refund, a mark on the provider",
      request: {
        params: VisitParams,
        ...jsonBody(
          z.strictObject({
            kind: z.enum(["cancelled", "no_show"]),
            reason: z.string().trim().min(1).max(500),
          }),
        ),
      },
      responses: { 200: jsonResponse(Any, "Refunded"), ...errorResponses },
    }),
    async (c) => {
      const { visitId } = c.req.valid("param");
      const body = c.req.valid("json");
      return c.json(
        await once(c, deps, "visit-failure", [visitId, body], 200, (trx, ctx) =>
          providerFailed(trx, ctx, visitId, body.kind, body.reason),
        ),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/review",
      tags,
      summary:
        "The family confirms a verified visit (the provider is paid) or disputes it (Idempotency-Key)",
      request: {
        params: VisitParams,
        ...jsonBody(
          z.union([
            z.strictObject({ confirm: z.literal(true) }),
            z.strictObject({ dispute: z.string().trim().min(3).max(2000) }),
          ]),
        ),
      },
      responses: { 200: jsonResponse(Any, "Reviewed"), ...errorResponses },
    }),
    async (c) => {
      const { visitId } = c.req.valid("param");
      const body = c.req.valid("json");
      return c.json(
        await once(c, deps, "visit-review", [visitId, body], 200, (trx, ctx) =>
          reviewVisit(trx, ctx, visitId, body),
        ),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/dispute-decision",
      tags,
      summary:
        "An operator settles a dispute: release, refund or split, with a note (Idempotency-Key)",
      request: {
        params: VisitParams,
        ...jsonBody(
          z.strictObject({
            outcome: z.enum(["release", "refund", "split"]),
            refund: z.number().int().min(0).optional(),
            note: z.string().trim().min(1).max(2000),
          }),
        ),
      },
      responses: { 200: jsonResponse(Any, "Decided"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      const { visitId } = c.req.valid("param");
      const body = c.req.valid("json");
      return c.json(
        await once(c, deps, "dispute-decision", [visitId, body], 200, (trx, ctx) =>
          decideDispute(trx, ctx, visitId, body),
        ),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/providers/{providerId}/payouts",
      tags,
      summary: "An operator records money paid out to a provider (Idempotency-Key)",
      request: {
        params: z.object({ providerId: z.string().max(64) }),
        ...jsonBody(
          z.strictObject({
            amount: z.number().int().min(1).max(1_000_000_000),
            reference: z.string().trim().min(1).max(200),
          }),
        ),
      },
      responses: { 201: jsonResponse(Any, "Paid out"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      const { providerId } = c.req.valid("param");
      const body = c.req.valid("json");
      return c.json(
        await once(c, deps, "payout", [providerId, body], 201, (trx, ctx) =>
          recordPayout(trx, ctx, providerId, body.amount, body.reference),
        ),
        201,
      );
    },
  );

  // JSON for pages, CSV (?format=csv) for the operators who pay out.
  app.openapi(
    createRoute({
      method: "get",
      path: "/providers/{providerId}/settlement",
      tags,
      summary: "A provider's settlement for a period: released visits, commission, fees, payouts",
      request: {
        params: z.object({ providerId: z.string().max(64) }),
        query: z.object({
          from: z.iso.date(),
          to: z.iso.date(),
          format: z.enum(["json", "csv"]).default("json"),
        }),
      },
      responses: {
        200: {
          description: "The settlement",
          content: { "application/json": { schema: Any }, "text/csv": { schema: z.string() } },
        },
        ...errorResponses,
      },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const q = c.req.valid("query");
      const report = await settlement(
        db,
        ctx.actor,
        c.req.valid("param").providerId,
        q.from,
        `${q.to}T23:59:59.999Z`,
      );
      if (q.format === "csv") {
        return c.body(settlementCsv(report), 200, {
          "content-type": "text/csv; charset=utf-8",
          "content-disposition": `attachment; filename="settlement-${q.from}-${q.to}.csv"`,
        });
      }
      return c.json(report, 200);
    },
  );

  return app;
}
