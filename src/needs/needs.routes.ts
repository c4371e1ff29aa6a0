import { createRoute } from "@hono/zod-openapi";
import { z as zod } from "zod";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import type { Scheduler } from "../jobs/scheduler";
import { once } from "../ledger/idempotency";
import { providerCategories } from "../providers/providers.table";
import {
  acceptOffer,
  EXPIRE_NEED_JOB,
  expireNeed,
  makeOffer,
  needsOfResident,
  openNeedsFor,
  postNeed,
} from "./needs.service";

const tags = ["Needs and offers"];
const Any = z.object({}).passthrough();
const LocalDate = z.iso.date({ message: "a date as YYYY-MM-DD" });
const LocalTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "a local time as HH:MM (24-hour)");

export function registerNeedJobs(scheduler: Scheduler) {
  scheduler.define({
    kind: EXPIRE_NEED_JOB,
    payload: zod.object({ needId: zod.string() }),
    maxAttempts: 1_000_000,
    async handler(ctx, { needId }) {
      await ctx.db.transaction().execute(async (trx) => {
        await expireNeed(trx, needId, ctx.clock.now());
        await ctx.completeWithin(trx);
      });
    },
  });
}

export function needsRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/needs",
      tags,
      summary: "Post a need the catalog does not meet (primaries)",
      request: {
        params: z.object({ residentId: z.string().max(64) }),
        ...jsonBody(
          z.strictObject({
            category: z.enum(providerCategories),
            description: z.string().trim().min(5).max(2000),
            date: LocalDate,
            time: LocalTime.optional(),
            budget: z.number().int().min(1).max(100_000_000).optional(),
            expiresAt: z.iso.datetime({ offset: true }),
          }),
        ),
      },
      responses: { 201: jsonResponse(Any, "Posted"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const body = c.req.valid("json");
      const need = await deps.db.transaction().execute((trx) =>
        postNeed(trx, ctx, c.req.valid("param").residentId, {
          ...body,
          expiresAt: new Date(body.expiresAt).toISOString(),
        }),
      );
      return c.json(need, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/needs",
      tags,
      summary: "A resident's needs with every offer",
      request: { params: z.object({ residentId: z.string().max(64) }) },
      responses: {
        200: jsonResponse(z.object({ items: z.array(Any) }), "Needs"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await needsOfResident(deps.db, authedCtx(c, deps), c.req.valid("param").residentId),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/providers/{providerId}/open-needs",
      tags,
      summary: "Open needs in this provider's area and categories (its admins)",
      request: { params: z.object({ providerId: z.string().max(64) }) },
      responses: {
        200: jsonResponse(z.object({ items: z.array(Any) }), "Open needs"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(await openNeedsFor(deps.db, authedCtx(c, deps), c.req.valid("param").providerId), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/needs/{needId}/offers",
      tags,
      summary: "Offer to meet a need: a service of yours, a price, a time, a message",
      request: {
        params: z.object({ needId: z.string().max(64) }),
        ...jsonBody(
          z.strictObject({
            providerId: z.string().min(1).max(64),
            serviceId: z.string().min(1).max(64),
            price: z.number().int().min(1).max(100_000_000),
            date: LocalDate,
            time: LocalTime,
            message: z.string().trim().min(1).max(2000),
          }),
        ),
      },
      responses: { 201: jsonResponse(Any, "Offered"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const body = c.req.valid("json");
      const offer = await deps.db
        .transaction()
        .execute((trx) => makeOffer(trx, ctx, c.req.valid("param").needId, body));
      return c.json(offer, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/needs/{needId}/offers/{offerId}/accept",
      tags,
      summary:
        "Take an offer (Idempotency-Key): it becomes an accepted booking, its price in escrow",
      request: { params: z.object({ needId: z.string().max(64), offerId: z.string().max(64) }) },
      responses: { 201: jsonResponse(Any, "The booking"), ...errorResponses },
    }),
    async (c) => {
      const { needId, offerId } = c.req.valid("param");
      const booking = await once(c, deps, "offer-accept", [needId, offerId], 201, (trx, ctx) =>
        acceptOffer(trx, ctx, needId, offerId),
      );
      return c.json(booking, 201);
    },
  );

  return app;
}
