import { z } from "@hono/zod-openapi";
import { Email, Language, LocalTime, Password, Phone, TimeZone } from "../validation";
import { roles } from "./accounts.table";

export const RoleSchema = z.enum(roles).openapi("Role");
export const channels = ["push", "sms"] as const;

export const UserSchema = z
  .object({
    id: z.string(),
    displayName: z.string(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
    roles: z.array(RoleSchema),
    language: z.string(),
    timeZone: z.string(),
    quietHours: z.object({ start: z.string(), end: z.string() }).nullable(),
    channels: z.array(z.string()),
    disabledAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("User");

export const SessionInfoSchema = z
  .object({
    token: z.string().openapi({
      description: "Send as 'Authorization: Bearer <token>'; also set as an HttpOnly cookie",
    }),
    sessionId: z.string(),
    expiresAt: z.string(),
  })
  .openapi("NewSession");

export const AuthResultSchema = z
  .object({ user: UserSchema, session: SessionInfoSchema })
  .openapi("AuthResult");

export const SessionSchema = z
  .object({
    id: z.string(),
    createdAt: z.string(),
    lastSeenAt: z.string(),
    expiresAt: z.string(),
    userAgent: z.string().nullable(),
    ip: z.string().nullable(),
    current: z.boolean(),
  })
  .openapi("Session");

export const NewUserFields = {
  displayName: z.string().trim().min(1).max(120),
  email: Email.optional(),
  phone: Phone.optional(),
  password: Password,
  language: Language.optional(),
  timeZone: TimeZone.optional(),
};

export const SignUpSchema = z
  .strictObject(NewUserFields)
  .refine((v) => v.email || v.phone, {
    message: "give an email address or a phone number",
    path: ["email"],
  })
  .openapi("SignUp");

export const LoginSchema = z
  .strictObject({
    login: z
      .string()
      .trim()
      .min(3)
      .max(254)
      .openapi({ description: "Email address or phone number (with country code)" }),
    password: z.string().min(1).max(200),
  })
  .openapi("Login");

export const PreferencesSchema = z
  .strictObject({
    displayName: z.string().trim().min(1).max(120).optional(),
    language: Language.optional(),
    timeZone: TimeZone.optional(),
    quietHours: z.strictObject({ start: LocalTime, end: LocalTime }).nullable().optional(),
    channels: z.array(z.enum(channels)).max(channels.length).optional(),
  })
  .openapi("Preferences");
