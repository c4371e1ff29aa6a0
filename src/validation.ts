// Shared field schemas: phone numbers in E.164, IANA time zones, local times, languages.
import { z } from "@hono/zod-openapi";
import { parsePhoneNumberFromString } from "libphonenumber-js";

export const languages = ["en", "zh-Hans"] as const;
export const Language = z.enum(languages).openapi({ description: "Preferred language" });

export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return value.includes("/") || value === "UTC";
  } catch {
    return false;
  }
}

export const TimeZone = z
  .string()
  .max(64)
  .refine(isTimeZone, { message: "not an IANA time zone (e.g. Asia/Shanghai, Europe/London)" })
  .openapi({ example: "Asia/Shanghai" });

/** Accepts a number written with its country code (+44 20 7946 0018) and stores it as E.164. */
export const Phone = z
  .string()
  .max(32)
  .transform((value, ctx) => {
    const parsed = parsePhoneNumberFromString(value);
    if (!parsed?.isValid()) {
      ctx.addIssue({
        code: "custom",
        message: "not a valid phone number: write it with its country code, e.g. +86 138 0013 8000",
      });
      return z.NEVER;
    }
    return parsed.number as string;
  })
  .openapi({ type: "string", example: "+8613800138000" });

export const Email = z
  .email({ message: "not a valid email address" })
  .max(254)
  .transform((v) => v.trim().toLowerCase())
  .openapi({ type: "string", example: "mei@example.com" });

export const LocalTime = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { message: "a local time as HH:MM (24-hour)" })
  .openapi({ example: "08:30" });

export const LocalDate = z.iso
  .date({ message: "a date as YYYY-MM-DD" })
  .openapi({ example: "1944-03-18" });

export const Instant = z.iso
  .datetime({
    offset: true,
    message: "an ISO-8601 date-time with a time zone, e.g. 2026-11-22T09:00:00Z",
  })
  .transform((v) => new Date(v).toISOString())
  .openapi({ type: "string", format: "date-time" });

export const Password = z
  .string()
  .min(10, { message: "must be at least 10 characters" })
  .max(200, { message: "must be at most 200 characters" });

export const Uuid = z.string().min(1).max(64);
