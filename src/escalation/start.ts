// Where an alert meets escalation: when it is raised, the resident's chain is copied onto it with
// a short reply code, and its first step is scheduled in the same transaction; when an SOS joins
// an alert someone already took charge of, that person is told again at once.
import { randomInt } from "node:crypto";
import type { AlertRow } from "../alerts/alerts.table";
import { addTimeline } from "../alerts/timeline";
import { iso } from "../clock";
import type { Executor } from "../db/database";
import { insertJob } from "../jobs/jobs.repository";
import { priorityOf } from "../notifications/priority";
import { personForPhone, personForUser, queueMessage } from "../notifications/queue";
import { getSettings } from "../settings/settings.service";
import { type EscalationPolicy, policyFor } from "./policy";
import { peopleReached } from "./reached";

export const ESCALATE_JOB = "alerts.escalate";
/** Escalation steps never give up on their own: the alert's state decides when they stop. */
export const STEP_MAX_ATTEMPTS = 1_000_000_000;

// No 0/O, 1/I/L, 2/Z, 5/S, 8/B: a code read off a phone screen and typed back must not be misread.
const CODE_ALPHABET = "ACDEFHJKMNPRTUVWXY34679";

/** A code no other open alert holds (the unique index on open codes is the last word). */
async function freshCode(db: Executor): Promise<string> {
  for (;;) {
    let code = "";
    for (let i = 0; i < 4; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
    const taken = await db
      .selectFrom("alerts")
      .select("id")
      .where("code", "=", code)
      .where("closed_at", "is", null)
      .executeTakeFirst();
    if (!taken) return code;
  }
}

/** The chain (the resident's, unless the alert brings its own) and code a new alert carries. */
export async function planEscalation(db: Executor, residentId: string, own?: EscalationPolicy) {
  const policy = own ?? (await policyFor(db, residentId)).policy;
  return { chain: JSON.stringify(policy), code: await freshCode(db) };
}

export function stepDedupeKey(alertId: string, step: number): string {
  return `alert-step:${alertId}:${step}`;
}

export async function scheduleStep(
  db: Executor,
  alertId: string,
  step: number,
  at: Date,
  now: Date,
  severity: "critical" | "warning" | "low" = "critical",
) {
  await insertJob(
    db,
    {
      kind: ESCALATE_JOB,
      payload: { alertId, step },
      runAt: at,
      maxAttempts: STEP_MAX_ATTEMPTS,
      dedupeKey: stepDedupeKey(alertId, step),
      priority: priorityOf(severity),
    },
    now,
  );
}

/** A new SOS or fall on an alert someone has taken charge of: tell them again, now. */
export async function renotifyAcknowledger(
  db: Executor,
  alert: AlertRow,
  sourceId: string | null,
  now: Date,
) {
  const resident = await db
    .selectFrom("residents")
    .select(["language", "time_zone"])
    .where("id", "=", alert.resident_id)
    .executeTakeFirstOrThrow();
  const person = alert.acknowledged_by
    ? await personForUser(db, alert.acknowledged_by)
    : alert.acknowledged_phone
      ? await personForPhone(db, alert.acknowledged_phone, alert.acknowledged_phone, {
          language: resident.language,
          timeZone: resident.time_zone,
        })
      : null;
  if (!person) return;
  const queued = await queueMessage(
    db,
    person,
    {
      purpose: "alert_repeat",
      message: { t: "alert_repeat", alertId: alert.id },
      channels: ["push", "sms"],
      alertId: alert.id,
      severity: "critical",
      dedupeKey: `alert:${alert.id}:repeat:${sourceId ?? iso(now)}`,
      requireConfirmedPhone: true,
    },
    now,
    await getSettings(db),
  );
  await addTimeline(db, alert.id, now, "acknowledger_renotified", null, {
    recipient: person.name,
    channels: queued.filter((q) => q.status === "pending").map((q) => q.channel),
  });
}

/** The resident cancelled an accidental press: everyone already reached hears it is over. */
export async function tellCancelled(db: Executor, alert: AlertRow, now: Date) {
  const audience = await peopleReached(db, alert);
  if (audience.size === 0) return;
  const settings = await getSettings(db);
  for (const { person, channels } of audience.values()) {
    await queueMessage(
      db,
      person,
      {
        purpose: "alert_cancelled",
        message: { t: "alert_cancelled", alertId: alert.id },
        channels: [...channels],
        alertId: alert.id,
        dedupeKey: `alert:${alert.id}:cancelled`,
        requireConfirmedPhone: true,
      },
      now,
      settings,
    );
  }
}
