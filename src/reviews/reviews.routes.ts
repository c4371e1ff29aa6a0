import { createRoute } from "@hono/zod-openapi";
import { authedCtx, requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import {
  decidePromotion,
  promotionsForOperator,
  proposePromotion,
  providerPromotions,
} from "./promotions.service";
import {
  HideSchema,
  NewPromotionSchema,
  NewRatingSchema,
  PromotionDecisionSchema,
  PromotionSchema,
  promotionStatuses,
  RatingSummarySchema,
  ReplySchema,
  ReviewListQuery,
  ReviewPageSchema,
  ReviewSchema,
} from "./reviews.schemas";
import {
  hideReview,
  providerReviews,
  rateVisit,
  replyToReview,
  workerRating,
} from "./reviews.service";

const reviewTags = ["Ratings and reviews"];
const promotionTags = ["Promotions"];
const Id = z.string().min(1).max(64);
const PromotionList = z.object({ items: z.array(PromotionSchema) });

export function reviewsRoutes(deps: AppDeps) {
  const app = createRouter();
  const db = deps.db;

  app.openapi(
    createRoute({
      method: "post",
      path: "/visits/{visitId}/rating",
      tags: reviewTags,
      summary:
        "Rate a verified visit (the resident's family): the provider 1-5, its worker 1-5 if it had one, a comment; once",
      request: { params: z.object({ visitId: Id }), ...jsonBody(NewRatingSchema) },
      responses: { 201: jsonResponse(ReviewSchema, "Rated"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const { visitId } = c.req.valid("param");
      const body = c.req.valid("json");
      const review = await db.transaction().execute((trx) => rateVisit(trx, ctx, visitId, body));
      return c.json(review, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/providers/{providerId}/reviews",
      tags: reviewTags,
      summary: "A provider's reviews, newest first, with its average (any signed-in user)",
      request: { params: z.object({ providerId: Id }), query: ReviewListQuery },
      responses: { 200: jsonResponse(ReviewPageSchema, "Reviews"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await providerReviews(
          db,
          authedCtx(c, deps),
          c.req.valid("param").providerId,
          c.req.valid("query"),
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/reviews/{reviewId}/reply",
      tags: reviewTags,
      summary: "The reviewed provider's admin replies, once",
      request: { params: z.object({ reviewId: Id }), ...jsonBody(ReplySchema) },
      responses: { 200: jsonResponse(ReviewSchema, "Replied"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const { reviewId } = c.req.valid("param");
      const { text } = c.req.valid("json");
      return c.json(
        await db.transaction().execute((trx) => replyToReview(trx, ctx, reviewId, text)),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/reviews/{reviewId}/hide",
      tags: reviewTags,
      summary:
        "Hide an abusive review (operators), with a reason: it leaves the public list and the averages; the audit log keeps it",
      request: { params: z.object({ reviewId: Id }), ...jsonBody(HideSchema) },
      responses: { 200: jsonResponse(ReviewSchema, "Hidden"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      const ctx = authedCtx(c, deps);
      const { reviewId } = c.req.valid("param");
      const { reason } = c.req.valid("json");
      return c.json(
        await db.transaction().execute((trx) => hideReview(trx, ctx, reviewId, reason)),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/workers/{workerId}/rating",
      tags: reviewTags,
      summary: "A worker's average rating over the visible reviews",
      request: { params: z.object({ workerId: Id }) },
      responses: {
        200: jsonResponse(
          z.object({ workerId: z.string(), providerId: z.string(), rating: RatingSummarySchema }),
          "The rating",
        ),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(await workerRating(db, authedCtx(c, deps), c.req.valid("param").workerId), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/providers/{providerId}/promotions",
      tags: promotionTags,
      summary:
        "Propose a promotion (the provider's admins): a percentage or an amount off some services for a period; an operator approves it",
      request: { params: z.object({ providerId: Id }), ...jsonBody(NewPromotionSchema) },
      responses: { 201: jsonResponse(PromotionSchema, "Proposed"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const { providerId } = c.req.valid("param");
      const body = c.req.valid("json");
      const promotion = await db
        .transaction()
        .execute((trx) => proposePromotion(trx, ctx, providerId, body));
      return c.json(promotion, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/providers/{providerId}/promotions",
      tags: promotionTags,
      summary:
        "A provider's promotions: every one for its admins and operators, the approved ones not yet over for others",
      request: {
        params: z.object({ providerId: Id }),
        query: z.object({ status: z.enum(promotionStatuses).optional() }),
      },
      responses: { 200: jsonResponse(PromotionList, "Promotions"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await providerPromotions(
          db,
          authedCtx(c, deps),
          c.req.valid("param").providerId,
          c.req.valid("query").status,
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/promotions",
      tags: promotionTags,
      summary: "Every provider's promotions in one state, oldest first (operators)",
      request: { query: z.object({ status: z.enum(promotionStatuses).default("proposed") }) },
      responses: { 200: jsonResponse(PromotionList, "Promotions"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      return c.json(
        await promotionsForOperator(db, authedCtx(c, deps), c.req.valid("query").status),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/promotions/{promotionId}/decision",
      tags: promotionTags,
      summary: "Approve or reject a proposed promotion, with a reason (operators)",
      request: { params: z.object({ promotionId: Id }), ...jsonBody(PromotionDecisionSchema) },
      responses: { 200: jsonResponse(PromotionSchema, "Decided"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      const ctx = authedCtx(c, deps);
      const { promotionId } = c.req.valid("param");
      const body = c.req.valid("json");
      return c.json(
        await db.transaction().execute((trx) => decidePromotion(trx, ctx, promotionId, body)),
        200,
      );
    },
  );

  return app;
}
