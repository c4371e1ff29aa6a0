// Business policies that operators edit at run time, kept in the database with defaults here.
// Later issues add their keys to `rules` and `settingDefaults`.
import { z } from "@hono/zod-openapi";
import { iso } from "../clock";
import type { Executor } from "../db/database";
import { AppError } from "../errors";

const rules = {
  "auth.session_ttl_hours": z
    .number()
    .int()
    .min(1)
    .max(24 * 365),
  "auth.login_slowdown_after": z.number().int().min(1).max(100),
  "auth.lockout_after": z.number().int().min(2).max(100),
  "auth.lockout_minutes": z
    .number()
    .int()
    .min(1)
    .max(24 * 60),
  "invitations.ttl_hours": z
    .number()
    .int()
    .min(1)
    .max(24 * 30),
  "password_reset.ttl_minutes": z
    .number()
    .int()
    .min(5)
    .max(24 * 60),
  "alerts.sos_cancel_window_s": z.number().int().min(0).max(600),
  "vitals.raw_retention_days": z.number().int().min(7).max(3_650),
  "notifications.warning_cap_per_hour": z.number().int().min(1).max(100),
  "notifications.bundle_minutes": z
    .number()
    .int()
    .min(5)
    .max(24 * 60),
  "notifications.sms_validity_s": z.number().int().min(60).max(14_400),
  "notifications.critical_push_ttl_s": z.number().int().min(30).max(86_400),
  "marketplace.currency": z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 code, e.g. CNY"),
  "marketplace.commission_percent": z.number().min(0).max(50),
  "bookings.accept_hours": z.number().int().min(1).max(168),
  "bookings.window_days": z.number().int().min(1).max(60),
  "bookings.free_cancel_hours": z.number().int().min(0).max(168),
  "bookings.late_cancel_fee_percent": z.number().min(0).max(100),
  "bookings.review_hours": z.number().int().min(1).max(720),
  "visits.checkin_radius_m": z.number().int().min(25).max(5_000),
  "visits.late_after_minutes": z.number().int().min(1).max(120),
  "visits.missed_after_minutes": z.number().int().min(2).max(240),
  "visits.open_after_minutes": z
    .number()
    .int()
    .min(15)
    .max(24 * 60),
  "visits.duration_tolerance_minutes": z.number().int().min(1).max(240),
  "visits.reminder_minutes": z
    .number()
    .int()
    .min(10)
    .max(24 * 60),
  "visits.code_ttl_minutes": z.number().int().min(1).max(60),
  "visits.offline_after_minutes": z.number().int().min(1).max(60),
};

export type SettingKey = keyof typeof rules;
export type Settings = { [K in SettingKey]: z.infer<(typeof rules)[K]> };

export const settingDefaults: Settings = {
  "auth.session_ttl_hours": 24 * 30,
  "auth.login_slowdown_after": 3,
  "auth.lockout_after": 8,
  "auth.lockout_minutes": 15,
  "invitations.ttl_hours": 72,
  "password_reset.ttl_minutes": 60,
  // An accidental press cancelled within two minutes closes the SOS (kept on record).
  "alerts.sos_cancel_window_s": 120,
  // Older readings live on as hourly min/mean/max/count, enough for long-range charts.
  "vitals.raw_retention_days": 90,
  // A flapping sensor may send a person this many warnings an hour; the rest wait in a bundle.
  // SOS and falls are never capped.
  "notifications.warning_cap_per_hour": 6,
  // Low-severity notices (a low battery) and capped warnings go out together this often.
  "notifications.bundle_minutes": 60,
  // An SOS text that arrives hours late is worse than none: Twilio drops it after this long.
  "notifications.sms_validity_s": 900,
  "notifications.critical_push_ttl_s": 300,
  // Wallets, prices and payouts are in this currency (set before the first payment).
  "marketplace.currency": "CNY",
  // The platform's share of each released visit.
  "marketplace.commission_percent": 10,
  // A provider that has not accepted a booking this long after it was made declines it.
  "bookings.accept_hours": 24,
  // A recurring series has its visits (and their escrow) this many days ahead, no more.
  "bookings.window_days": 14,
  // Cancelling at least this long before a visit refunds it in full; later costs a fee.
  "bookings.free_cancel_hours": 24,
  "bookings.late_cancel_fee_percent": 50,
  // After a visit is verified, the family has this long to confirm or dispute it.
  "bookings.review_hours": 48,
  // A check-in this far from the home (less the phone's reported accuracy) is an exception.
  "visits.checkin_radius_m": 150,
  // No check-in this long after the start: the provider hears of it and the family is told.
  "visits.late_after_minutes": 15,
  // No check-in this long after the start: a missed visit, through the escalation chain.
  "visits.missed_after_minutes": 30,
  // No check-out this long after the end: an open-visit alert.
  "visits.open_after_minutes": 120,
  // A visit shorter or longer than planned by more than this needs the worker's comment.
  "visits.duration_tolerance_minutes": 15,
  // Workers hear of their day this long before the first visit.
  "visits.reminder_minutes": 60,
  // A one-time presence code is good for this long.
  "visits.code_ttl_minutes": 10,
  // An entry made this long before it reached kincare was captured offline.
  "visits.offline_after_minutes": 5,
};

export const settingsSchema = z.object(rules);
export const settingsPatchSchema = z.strictObject(rules).partial();

export async function getSettings(db: Executor): Promise<Settings> {
  const rows = await db.selectFrom("settings").select(["key", "value"]).execute();
  const stored: Record<string, unknown> = {};
  for (const row of rows) {
    if (row.key in rules) stored[row.key] = JSON.parse(row.value);
  }
  const settings: Record<string, unknown> = { ...settingDefaults };
  for (const key of Object.keys(rules) as SettingKey[]) {
    // A stored value that no longer fits (after a rule tightened) falls back to its default.
    const parsed = rules[key].safeParse(stored[key]);
    if (parsed.success) settings[key] = parsed.data;
  }
  return settings as Settings;
}

export async function getSetting<K extends SettingKey>(db: Executor, key: K): Promise<Settings[K]> {
  return (await getSettings(db))[key];
}

export async function updateSettings(
  db: Executor,
  patch: Partial<Settings>,
  by: string | null,
  now: Date,
): Promise<Settings> {
  const entries = Object.entries(patch).filter(([, v]) => v !== undefined);
  if (entries.length === 0)
    throw new AppError("bad_request", "name at least one setting to change");
  // A visit is late before it is missed, and missed before it is left open.
  const next = { ...(await getSettings(db)), ...patch };
  if (next["visits.missed_after_minutes"] <= next["visits.late_after_minutes"]) {
    throw new AppError("validation_failed", "a visit must be late before it is missed", {
      issues: [
        {
          path: "visits.missed_after_minutes",
          message: `must be more than visits.late_after_minutes (${next["visits.late_after_minutes"]})`,
        },
      ],
    });
  }
  for (const [key, value] of entries) {
    await db
      .insertInto("settings")
      .values({ key, value: JSON.stringify(value), updated_at: iso(now), updated_by: by })
      .onConflict((oc) =>
        oc
          .column("key")
          .doUpdateSet({ value: JSON.stringify(value), updated_at: iso(now), updated_by: by }),
      )
      .execute();
  }
  return getSettings(db);
}
