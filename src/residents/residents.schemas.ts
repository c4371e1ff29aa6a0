import { z } from "@hono/zod-openapi";
import { Language, LocalDate, Phone, TimeZone } from "../validation";
import { residentStatuses } from "./residents.table";

export const AddressSchema = z
  .strictObject({
    line1: z.string().trim().min(1).max(200),
    line2: z.string().trim().max(200).nullable().optional(),
    locality: z
      .string()
      .trim()
      .min(1)
      .max(120)
      .openapi({ description: "City district or town, used to match local providers" }),
    region: z.string().trim().max(120).nullable().optional(),
    postalCode: z.string().trim().max(20).nullable().optional(),
    country: z
      .string()
      .regex(/^[A-Z]{2}$/, { message: "an ISO 3166-1 alpha-2 country code, e.g. CN, GB" })
      .openapi({ example: "CN" }),
    latitude: z.number().min(-90).max(90),
    longitude: z.number().min(-180).max(180),
  })
  .openapi("Address");

const profileFields = {
  fullName: z.string().trim().min(1).max(200),
  preferredName: z.string().trim().max(100).nullable().optional(),
  dateOfBirth: LocalDate,
  address: AddressSchema,
  timeZone: TimeZone,
  language: Language,
  phone: Phone.nullable().optional(),
};

export const Relationship = z.string().trim().min(1).max(60).openapi({ example: "daughter" });

export const CreateResidentSchema = z
  .strictObject({
    ...profileFields,
    medicalNotes: z.string().max(10_000).nullable().optional(),
    allergies: z.array(z.string().trim().min(1).max(200)).max(100).optional(),
    accessNotes: z.string().max(2_000).nullable().optional(),
    relationship: Relationship.optional().openapi({
      description:
        "Your relationship to the resident, when a family member registers a parent (you become the primary)",
    }),
  })
  .openapi("NewResident");

export const UpdateResidentSchema = z
  .strictObject({
    fullName: profileFields.fullName.optional(),
    preferredName: profileFields.preferredName,
    dateOfBirth: LocalDate.optional(),
    address: AddressSchema.optional(),
    timeZone: TimeZone.optional(),
    language: Language.optional(),
    phone: profileFields.phone,
  })
  .openapi("ResidentUpdate");

export const ResidentSchema = z
  .object({
    id: z.string(),
    fullName: z.string(),
    preferredName: z.string().nullable(),
    dateOfBirth: z.string(),
    address: z.object({
      line1: z.string(),
      line2: z.string().nullable(),
      locality: z.string(),
      region: z.string().nullable(),
      postalCode: z.string().nullable(),
      country: z.string(),
      latitude: z.number(),
      longitude: z.number(),
    }),
    timeZone: z.string(),
    language: z.string(),
    phone: z.string().nullable(),
    status: z.enum(residentStatuses),
    pausedFrom: z.string().nullable(),
    pausedUntil: z.string().nullable(),
    statusReason: z.string().nullable(),
    confirmed: z
      .boolean()
      .openapi({ description: "False while a family registration waits for an operator" }),
    confirmedAt: z.string().nullable(),
    hasAccount: z.boolean(),
    myRelation: z.enum(["operator", "primary", "member", "self"]).nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Resident");

export const HealthSchema = z
  .object({ medicalNotes: z.string().nullable(), allergies: z.array(z.string()) })
  .openapi("ResidentHealth");

export const HealthUpdateSchema = z
  .strictObject({
    medicalNotes: z.string().max(10_000).nullable().optional(),
    allergies: z.array(z.string().trim().min(1).max(200)).max(100).optional(),
  })
  .openapi("ResidentHealthUpdate");

export const AccessNotesSchema = z
  .object({ accessNotes: z.string().nullable() })
  .openapi("AccessNotes");
export const AccessNotesUpdateSchema = z
  .strictObject({ accessNotes: z.string().max(2_000).nullable() })
  .openapi("AccessNotesUpdate");

export const StatusChangeSchema = z
  .discriminatedUnion("status", [
    z.strictObject({ status: z.literal("active"), reason: z.string().max(500).optional() }),
    z.strictObject({
      status: z.literal("paused"),
      from: LocalDate.optional().openapi({
        description: "First day away, in the resident's time zone; default today",
      }),
      until: LocalDate.nullable()
        .optional()
        .openapi({ description: "Expected day back; open-ended if absent" }),
      reason: z.string().trim().min(1).max(500).openapi({ example: "in hospital" }),
    }),
    z.strictObject({ status: z.literal("archived"), reason: z.string().trim().min(1).max(500) }),
  ])
  .openapi("ResidentStatusChange");

export const ResidentListQuery = z.object({
  status: z.enum(residentStatuses).optional(),
  pending: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "Only registrations awaiting confirmation" }),
  q: z.string().max(120).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});
