// The one way to send a message to a person or a phone number: `queueMessage` writes a delivery
// row per channel and address, and a durable job that sends it, inside the caller's transaction.
// Whether a row may be sent at all (a confirmed number, a subscription, quiet hours, caps) is
// decided here and written on the row, so the record says why something was not sent.
import { addMs, iso } from "../clock";
import type { Executor } from "../db/database";
import { newId } from "../ids";
import { insertJob } from "../jobs/jobs.repository";
import type { Settings } from "../settings/settings.service";
import { inWindow, localTime } from "../time";
import type { Channel, DeliveryStatus } from "./notifications.table";
import { priorityOf } from "./priority";
import type { Message } from "./templates";

export const DELIVER_JOB = "notifications.deliver";
export const BUNDLE_JOB = "notifications.bundle";

/** Someone kincare can reach: a user (push, and SMS on their phone) or a bare phone number. */
export interface Person {
  key: string;
  userId: string | null;
  phone: string | null;
  name: string;
  language: string;
  timeZone: string;
  quietHours: { start: string; end: string } | null;
  /** The user's own channel choice; null for a bare number. */
  channels: Channel[] | null;
}

export interface QueueSpec {
  purpose: string;
  message: Message;
  channels: readonly Channel[];
  alertId?: string | undefined;
  step?: number | undefined;
  severity?: "critical" | "warning" | "low" | undefined;
  /** Makes the rows idempotent: queueing twice with one key writes once. */
  dedupeKey: string;
  /** Alert texts go only to numbers their owner confirmed; a confirmation code need not. */
  requireConfirmedPhone: boolean;
}

export interface Queued {
  id: string;
  channel: Channel;
  status: DeliveryStatus;
  reason: string | null;
}

export type LimitSettings = Pick<
  Settings,
  "notifications.warning_cap_per_hour" | "notifications.bundle_minutes"
>;

export async function personForUser(db: Executor, userId: string): Promise<Person | null> {
  const user = await db
    .selectFrom("users")
    .select([
      "id",
      "display_name",
      "phone",
      "language",
      "time_zone",
      "quiet_hours_start",
      "quiet_hours_end",
      "channels",
      "disabled_at",
    ])
    .where("id", "=", userId)
    .executeTakeFirst();
  if (!user || user.disabled_at) return null;
  return {
    key: `user:${user.id}`,
    userId: user.id,
    phone: user.phone,
    name: user.display_name,
    language: user.language,
    timeZone: user.time_zone,
    quietHours:
      user.quiet_hours_start && user.quiet_hours_end
        ? { start: user.quiet_hours_start, end: user.quiet_hours_end }
        : null,
    channels: JSON.parse(user.channels) as Channel[],
  };
}

export async function personForPhone(
  db: Executor,
  phone: string,
  name: string,
  fallback: { language: string; timeZone: string },
): Promise<Person> {
  const known = await db
    .selectFrom("phone_numbers")
    .select("language")
    .where("phone", "=", phone)
    .executeTakeFirst();
  return {
    key: `phone:${phone}`,
    userId: null,
    phone,
    name,
    language: known?.language ?? fallback.language,
    timeZone: fallback.timeZone,
    quietHours: null,
    channels: null,
  };
}

function inQuietHours(person: Person, now: Date): boolean {
  if (!person.quietHours) return false;
  return inWindow(localTime(now, person.timeZone), person.quietHours.start, person.quietHours.end);
}

/** Warnings a person was sent in the last hour: the cap protects them from a flapping sensor. */
async function warningsSentLastHour(db: Executor, person: Person, now: Date): Promise<number> {
  let q = db
    .selectFrom("deliveries")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("purpose", "=", "alert_step")
    .where("severity", "=", "warning")
    .where("created_at", ">", iso(addMs(now, -3_600_000)))
    .where("status", "not in", ["capped", "bundled", "skipped", "cancelled"]);
  q = person.userId ? q.where("user_id", "=", person.userId) : q.where("phone", "=", person.phone);
  const row = await q.executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Which channels to use: the tier's, narrowed to the person's choice unless that leaves none. */
function channelsFor(person: Person, wanted: readonly Channel[]): Channel[] {
  const chosen = person.channels ? wanted.filter((c) => person.channels!.includes(c)) : [...wanted];
  return chosen.length > 0 ? chosen : [...wanted];
}

interface Row {
  channel: Channel;
  subscriptionId: string | null;
  phone: string | null;
  status: DeliveryStatus;
  reason: string | null;
  suffix: string;
}

async function plannedRows(
  db: Executor,
  person: Person,
  spec: QueueSpec,
  now: Date,
  limits: LimitSettings,
): Promise<Row[]> {
  const rows: Row[] = [];
  let held: { status: DeliveryStatus; reason: string } | null = null;
  if (spec.severity === "low")
    held = { status: "bundled", reason: "low severity: sent in the next bundle" };
  else if (spec.severity === "warning" && spec.purpose === "alert_step") {
    const sent = await warningsSentLastHour(db, person, now);
    if (sent >= limits["notifications.warning_cap_per_hour"]) {
      held = {
        status: "capped",
        reason: "hourly limit for this person reached: sent in the next bundle",
      };
    }
  }
  const quiet = spec.severity === "warning" && inQuietHours(person, now);
  for (const channel of channelsFor(person, spec.channels)) {
    if (channel === "push") {
      const subs = person.userId
        ? await db
            .selectFrom("push_subscriptions")
            .select("id")
            .where("user_id", "=", person.userId)
            .execute()
        : [];
      if (subs.length === 0) {
        if (person.userId) {
          rows.push({
            channel,
            subscriptionId: null,
            phone: null,
            status: "skipped",
            reason: "no device has push notifications on",
            suffix: "push",
          });
        }
        continue;
      }
      for (const sub of subs) {
        rows.push({
          channel,
          subscriptionId: sub.id,
          phone: null,
          status: held?.status ?? "pending",
          reason: held?.reason ?? (quiet ? "quiet hours: a silent notification" : null),
          suffix: `push:${sub.id}`,
        });
      }
      continue;
    }
    if (!person.phone) continue;
    const number = await db
      .selectFrom("phone_numbers")
      .select(["confirmed_at", "opted_out_at"])
      .where("phone", "=", person.phone)
      .executeTakeFirst();
    let status: DeliveryStatus = held?.status ?? "pending";
    let reason = held?.reason ?? null;
    if (number?.opted_out_at) {
      status = "skipped";
      reason = "the number opted out of texts (STOP)";
    } else if (spec.requireConfirmedPhone && !number?.confirmed_at) {
      status = "skipped";
      reason = "the number is not confirmed by its owner yet";
    } else if (quiet && !held) {
      status = "skipped";
      reason = "quiet hours: no text for a warning";
    }
    rows.push({
      channel,
      subscriptionId: null,
      phone: person.phone,
      status,
      reason,
      suffix: "sms",
    });
  }
  return rows;
}

export async function queueMessage(
  db: Executor,
  person: Person,
  spec: QueueSpec,
  now: Date,
  limits: LimitSettings,
): Promise<Queued[]> {
  const rows = await plannedRows(db, person, spec, now, limits);
  const queued: Queued[] = [];
  for (const row of rows) {
    const id = newId();
    const dedupeKey = `${spec.dedupeKey}:${person.key}:${row.suffix}`;
    const inserted = await db
      .insertInto("deliveries")
      .values({
        id,
        purpose: spec.purpose,
        alert_id: spec.alertId ?? null,
        step: spec.step ?? null,
        severity: spec.severity ?? null,
        user_id: person.userId,
        phone: row.phone,
        subscription_id: row.subscriptionId,
        recipient_name: person.name,
        channel: row.channel,
        dedupe_key: dedupeKey,
        status: row.status,
        message: JSON.stringify({
          ...spec.message,
          ...(row.reason?.startsWith("quiet") ? { quiet: true } : {}),
          language: person.language,
          timeZone: person.timeZone,
        }),
        provider_ref: null,
        error_code: null,
        error_reason: row.reason,
        claim_fence: null,
        created_at: iso(now),
        updated_at: iso(now),
        sent_at: null,
      })
      .onConflict((oc) => oc.column("dedupe_key").doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) continue;
    queued.push({ id, channel: row.channel, status: row.status, reason: row.reason });
    if (row.status === "pending") {
      await insertJob(
        db,
        {
          kind: DELIVER_JOB,
          payload: { deliveryId: id },
          runAt: now,
          maxAttempts: 6,
          priority: priorityOf(spec.severity),
        },
        now,
      );
    } else if (row.status === "bundled" || row.status === "capped") {
      await insertJob(
        db,
        {
          kind: BUNDLE_JOB,
          payload: { personKey: person.key },
          runAt: addMs(now, limits["notifications.bundle_minutes"] * 60_000),
          maxAttempts: 10,
          dedupeKey: `bundle:${person.key}`,
        },
        now,
      );
    }
  }
  return queued;
}
