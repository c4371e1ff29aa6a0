import { z } from "@hono/zod-openapi";
import { CategorySchema } from "../providers/providers.schemas";
import { serviceUnits } from "../providers/providers.table";
import { LocalTime } from "../validation";

export const weekDays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

const WindowSchema = z
  .strictObject({ day: z.enum(weekDays), start: LocalTime, end: LocalTime })
  .refine((w) => w.start < w.end, { message: "must end after it starts", path: ["end"] })
  .openapi("AvailabilityWindow");

const Money = {
  priceMinor: z
    .number()
    .int({ message: "an integer number of minor units (e.g. fen, pence)" })
    .min(0)
    .max(100_000_000)
    .openapi({ description: "Price in integer minor units of the currency", example: 12000 }),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, { message: "an ISO 4217 currency code, e.g. CNY, GBP" })
    .openapi({ example: "CNY" }),
};

const serviceFields = {
  title: z.string().trim().min(1).max(120),
  category: CategorySchema,
  description: z.string().trim().max(4_000).default(""),
  ...Money,
  unit: z.enum(serviceUnits),
  durationMinutes: z
    .number()
    .int()
    .min(5)
    .max(24 * 60),
  minNoticeHours: z
    .number()
    .int()
    .min(0)
    .max(24 * 30),
  availability: z.array(WindowSchema).max(50).default([]).openapi({
    description: "Weekly windows in the resident's local time when the service can start",
  }),
  active: z.boolean().default(true),
};

export const NewServiceSchema = z.strictObject(serviceFields).openapi("NewService");

export const UpdateServiceSchema = z
  .strictObject({
    title: serviceFields.title.optional(),
    category: CategorySchema.optional(),
    description: z.string().trim().max(4_000).optional(),
    priceMinor: Money.priceMinor.optional(),
    currency: Money.currency.optional(),
    unit: z.enum(serviceUnits).optional(),
    durationMinutes: serviceFields.durationMinutes.optional(),
    minNoticeHours: serviceFields.minNoticeHours.optional(),
    availability: z.array(WindowSchema).max(50).optional(),
    active: z.boolean().optional(),
  })
  .openapi("ServiceUpdate");

export const ServiceSchema = z
  .object({
    id: z.string(),
    providerId: z.string(),
    title: z.string(),
    category: CategorySchema,
    description: z.string(),
    price: z.object({ amountMinor: z.number().int(), currency: z.string() }),
    unit: z.enum(serviceUnits),
    durationMinutes: z.number().int(),
    minNoticeHours: z.number().int(),
    availability: z.array(z.object({ day: z.enum(weekDays), start: z.string(), end: z.string() })),
    active: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Service");

export const searchSorts = ["rating", "price", "distance"] as const;

const Amount = z.coerce.number().int().min(0).max(100_000_000);

export const SearchQuery = z
  .object({
    residentId: z.string().min(1).max(64).openapi({
      description: "Whom the service is for: results are always limited to providers serving them",
    }),
    q: z.string().trim().max(200).optional().openapi({ description: "Free text (any language)" }),
    category: CategorySchema.optional(),
    minPrice: Amount.optional(),
    maxPrice: Amount.optional(),
    minRating: z.coerce.number().min(1).max(5).optional(),
    sort: z.enum(searchSorts).default("rating"),
    limit: z.coerce.number().int().min(1).max(50).default(20),
    cursor: z.string().max(200).optional(),
  })
  .refine((v) => v.minPrice === undefined || v.maxPrice === undefined || v.minPrice <= v.maxPrice, {
    message: "must not be below minPrice",
    path: ["maxPrice"],
  });

export const SearchResultSchema = z
  .object({
    items: z.array(
      z.object({
        service: ServiceSchema,
        provider: z.object({
          id: z.string(),
          displayName: z.string(),
          rating: z.object({ average: z.number().nullable(), count: z.number().int() }),
        }),
        distanceKm: z
          .number()
          .nullable()
          .openapi({ description: "From the resident to the provider's base, when it gave one" }),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .openapi("CatalogSearchResult");
