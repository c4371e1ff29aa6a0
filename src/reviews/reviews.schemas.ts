import { z } from "@hono/zod-openapi";
import { LocalDate } from "../validation";

const Rating = z.number().int().min(1).max(5);

export const NewRatingSchema = z
  .strictObject({
    provider: Rating.openapi({ description: "The provider, 1 to 5" }),
    worker: Rating.optional().openapi({
      description: "The worker, 1 to 5: only when the visit had one",
    }),
    comment: z.string().trim().min(1).max(2000).optional(),
  })
  .openapi("NewRating");

export const ReviewSchema = z
  .object({
    id: z.string(),
    providerId: z.string(),
    serviceId: z.string(),
    serviceTitle: z.string().nullable(),
    providerRating: z.number().int(),
    workerRating: z.number().int().nullable(),
    comment: z.string().nullable(),
    reply: z.object({ text: z.string(), at: z.string().nullable() }).nullable(),
    createdAt: z.string(),
  })
  .passthrough()
  .openapi("Review", {
    description: "Operators also see the visit, author and whether it is hidden",
  });

export const RatingSummarySchema = z.object({
  average: z.number().nullable(),
  count: z.number().int(),
});

export const ReviewPageSchema = z
  .object({
    providerId: z.string(),
    rating: RatingSummarySchema,
    items: z.array(ReviewSchema),
    nextCursor: z.string().nullable(),
  })
  .openapi("ReviewPage");

export const ReviewListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  before: z.string().max(64).optional().openapi({ description: "nextCursor of the page before" }),
  includeHidden: z
    .enum(["true", "false"])
    .optional()
    .transform((v) => v === "true")
    .openapi({ description: "Operators only: hidden reviews too" }),
});

export const ReplySchema = z.strictObject({ text: z.string().trim().min(1).max(2000) });
export const HideSchema = z.strictObject({ reason: z.string().trim().min(3).max(500) });

export const promotionStatuses = ["proposed", "approved", "rejected"] as const;

export const NewPromotionSchema = z
  .strictObject({
    title: z.string().trim().min(1).max(80).openapi({ example: "Spring offer" }),
    percentOff: z.number().int().min(1).max(90).optional(),
    amountOff: z
      .number()
      .int()
      .min(1)
      .max(100_000_000)
      .optional()
      .openapi({ description: "A fixed amount off each visit, in minor units" }),
    serviceIds: z.array(z.string().min(1).max(64)).min(1).max(100),
    startsOn: LocalDate,
    endsOn: LocalDate.openapi({ description: "The last local date it applies (inclusive)" }),
  })
  .refine((p) => (p.percentOff === undefined) !== (p.amountOff === undefined), {
    message: "give either percentOff or amountOff",
    path: ["percentOff"],
  })
  .refine((p) => p.startsOn <= p.endsOn, {
    message: "on or after startsOn",
    path: ["endsOn"],
  })
  .openapi("NewPromotion");

export const PromotionSchema = z
  .object({
    id: z.string(),
    providerId: z.string(),
    title: z.string(),
    percentOff: z.number().int().nullable(),
    amountOff: z.number().int().nullable(),
    currency: z.string(),
    serviceIds: z.array(z.string()),
    startsOn: z.string(),
    endsOn: z.string(),
    status: z.enum(promotionStatuses),
    decidedAt: z.string().nullable(),
    decisionReason: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("Promotion");

export const PromotionDecisionSchema = z
  .strictObject({
    approve: z.boolean(),
    reason: z.string().trim().min(3).max(500),
  })
  .openapi("PromotionDecision");
