import { z } from "@hono/zod-openapi";
import { Email, LocalDate, Phone } from "../validation";
import { providerCategories, providerStatuses, workerStatuses } from "./providers.table";

export const CategorySchema = z.enum(providerCategories).openapi("ServiceCategory");

const Locality = z.string().trim().min(1).max(120);

export const ServiceAreaSchema = z
  .strictObject({
    localities: z
      .array(Locality)
      .max(200)
      .default([])
      .openapi({ description: "Residents' localities served, matched without regard to case" }),
    centre: z
      .strictObject({
        latitude: z.number().min(-90).max(90),
        longitude: z.number().min(-180).max(180),
      })
      .nullable()
      .optional(),
    radiusKm: z.number().positive().max(100).nullable().optional(),
  })
  .refine((a) => (a.centre == null) === (a.radiusKm == null), {
    message: "give both a centre and a radius, or neither",
    path: ["radiusKm"],
  })
  .refine((a) => a.localities.length > 0 || a.centre != null, {
    message: "name at least one locality, or a centre and a radius",
    path: ["localities"],
  })
  .openapi("ServiceArea");

const OnCallSchema = z
  .strictObject({ name: z.string().trim().min(1).max(200), phone: Phone })
  .openapi("OnCallPerson");

export const NewProviderSchema = z
  .strictObject({
    legalName: z.string().trim().min(1).max(200),
    displayName: z.string().trim().min(1).max(120),
    licenceNumber: z.string().trim().min(3).max(64),
    categories: z.array(CategorySchema).min(1).max(providerCategories.length),
    serviceArea: ServiceAreaSchema,
    contact: z.strictObject({ email: Email, phone: Phone }),
    onCall: OnCallSchema,
  })
  .openapi("NewProvider");

export const UpdateProviderSchema = z
  .strictObject({
    displayName: z.string().trim().min(1).max(120).optional(),
    categories: z.array(CategorySchema).min(1).max(providerCategories.length).optional(),
    serviceArea: ServiceAreaSchema.optional(),
    contact: z.strictObject({ email: Email, phone: Phone }).optional(),
    onCall: OnCallSchema.optional(),
  })
  .openapi("ProviderUpdate");

export const ProviderStatusChangeSchema = z
  .discriminatedUnion("status", [
    z.strictObject({
      status: z.literal("verified"),
      reason: z.string().trim().max(500).optional(),
    }),
    z.strictObject({ status: z.literal("rejected"), reason: z.string().trim().min(1).max(500) }),
    z.strictObject({ status: z.literal("suspended"), reason: z.string().trim().min(1).max(500) }),
  ])
  .openapi("ProviderStatusChange");

const RatingSchema = z.object({ average: z.number().nullable(), count: z.number().int() });

export const PublicProviderSchema = z
  .object({
    id: z.string(),
    displayName: z.string(),
    categories: z.array(CategorySchema),
    serviceArea: z.object({
      localities: z.array(z.string()),
      centre: z.object({ latitude: z.number(), longitude: z.number() }).nullable(),
      radiusKm: z.number().nullable(),
    }),
    status: z.enum(providerStatuses),
    rating: RatingSchema,
  })
  .openapi("ProviderProfile");

export const ProviderSchema = PublicProviderSchema.extend({
  legalName: z.string(),
  licenceNumber: z.string(),
  contact: z.object({ email: z.string(), phone: z.string() }),
  onCall: z.object({ name: z.string(), phone: z.string() }),
  statusReason: z.string().nullable(),
  statusChangedAt: z.string().nullable(),
  noShowCount: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
})
  .openapi({ description: "The full record, for the provider's admins and operators" })
  .openapi("Provider");

export const ProviderListQuery = z.object({
  status: z.enum(providerStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});

const Skill = z.string().trim().min(1).max(60);

export const CertificateSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    skill: Skill.openapi({ description: "The skill this certificate qualifies the worker for" }),
    expiresOn: LocalDate,
  })
  .openapi("Certificate");

export const NewWorkerSchema = z
  .strictObject({
    legalName: z.string().trim().min(1).max(200),
    phone: Phone,
    photoRef: z.string().trim().max(500).nullable().optional(),
    idDocumentNumber: z
      .string()
      .trim()
      .min(4)
      .max(64)
      .regex(/^[\w -]+$/, { message: "letters, digits, spaces and dashes only" })
      .openapi({
        description: "Stored encrypted; shown afterwards only as its last four characters",
      }),
    skills: z.array(Skill).max(50).default([]),
    certificates: z.array(CertificateSchema).max(50).default([]),
    backgroundCheckedOn: LocalDate.nullable().optional(),
    userId: z
      .string()
      .max(64)
      .nullable()
      .optional()
      .openapi({ description: "The worker's own account (it must hold the worker role)" }),
  })
  .openapi("NewWorker");

export const UpdateWorkerSchema = z
  .strictObject({
    phone: Phone.optional(),
    photoRef: z.string().trim().max(500).nullable().optional(),
    skills: z.array(Skill).max(50).optional(),
    certificates: z.array(CertificateSchema).max(50).optional(),
    backgroundCheckedOn: LocalDate.nullable().optional(),
    userId: z.string().max(64).nullable().optional(),
  })
  .openapi("WorkerUpdate");

export const WorkerStatusChangeSchema = z
  .discriminatedUnion("status", [
    z.strictObject({
      status: z.literal("verified"),
      reason: z.string().trim().max(500).optional(),
    }),
    z.strictObject({ status: z.literal("suspended"), reason: z.string().trim().min(1).max(500) }),
  ])
  .openapi("WorkerStatusChange");

export const WorkerSchema = z
  .object({
    id: z.string(),
    providerId: z.string(),
    userId: z.string().nullable(),
    legalName: z.string(),
    phone: z.string(),
    photoRef: z.string().nullable(),
    idDocument: z.string().openapi({ example: "••••••1234" }),
    skills: z.array(z.string()),
    certificates: z.array(z.object({ name: z.string(), skill: z.string(), expiresOn: z.string() })),
    backgroundCheckedOn: z.string().nullable(),
    status: z.enum(workerStatuses),
    statusReason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Worker");
