// The escalation engine. Each step of an alert is a durable job fenced by the alert's `step`:
// it runs only while the alert is open and at that step, writes its deliveries and the next
// step's job in one transaction with its own completion, so a stale, repeated or resumed job
// does nothing twice. An auditor restarts any alert whose next step is overdue.
import { z } from "zod";
import type { AlertRow } from "../alerts/alerts.table";
import { addTimeline } from "../alerts/timeline";
import { addMs, iso } from "../clock";
import type { Executor } from "../db/database";
import { defineRecurring } from "../jobs/recurring";
import type { JobContext, Scheduler } from "../jobs/scheduler";
import { type Person, personForPhone, personForUser, queueMessage } from "../notifications/queue";
import { getSettings } from "../settings/settings.service";
import { localParts } from "../time";
import { type EscalationPolicy, PolicySchema, type Recipient } from "./policy";
import { ESCALATE_JOB, STEP_MAX_ATTEMPTS, scheduleStep, stepDedupeKey } from "./start";

export function registerEscalationJobs(scheduler: Scheduler, db: Executor, onQueued: () => void) {
  scheduler.define({
    kind: ESCALATE_JOB,
    payload: z.object({ alertId: z.string(), step: z.number().int().min(0) }),
    maxAttempts: STEP_MAX_ATTEMPTS,
    backoffMs: (attempt) => Math.min(500 * 2 ** (attempt - 1), 15_000),
    leaseMs: 30_000,
    async handler(ctx, payload) {
      const ran = await ctx.db.transaction().execute(async (trx) => {
        const done = await runStep(trx, ctx, payload.alertId, payload.step);
        await ctx.completeWithin(trx);
        return done;
      });
      if (ran) onQueued();
    },
  });
  return defineRecurring(scheduler, db as never, {
    kind: "alerts.escalation_audit",
    everyMs: 30_000,
    run: (ctx) => auditOverdue(ctx),
  });
}

/** Who a tier's recipient stands for, now. */
async function resolveRecipient(
  db: Executor,
  alert: AlertRow,
  recipient: Recipient,
  resident: { language: string; time_zone: string },
): Promise<{ people: Person[]; note?: string }> {
  switch (recipient.kind) {
    case "member": {
      const inCircle = await db
        .selectFrom("circle_members")
        .select("user_id")
        .where("resident_id", "=", alert.resident_id)
        .where("user_id", "=", recipient.userId)
        .executeTakeFirst();
      const person = inCircle ? await personForUser(db, recipient.userId) : null;
      return person
        ? { people: [person] }
        : { people: [], note: "a member no longer in the circle" };
    }
    case "phone":
      return {
        people: [
          await personForPhone(db, recipient.phone, recipient.name, {
            language: resident.language,
            timeZone: resident.time_zone,
          }),
        ],
      };
    case "primaries": {
      const rows = await db
        .selectFrom("circle_members")
        .select("user_id")
        .where("resident_id", "=", alert.resident_id)
        .where("level", "=", "primary")
        .orderBy("created_at")
        .execute();
      const people = await Promise.all(rows.map((r) => personForUser(db, r.user_id)));
      return { people: people.filter((p): p is Person => p !== null) };
    }
    case "desk": {
      const onDuty = await db.selectFrom("desk_duty").select("user_id").execute();
      let ids = onDuty.map((d) => d.user_id);
      let note: string | undefined;
      if (ids.length === 0) {
        const operators = await db
          .selectFrom("user_roles")
          .select("user_id")
          .where("role", "=", "operator")
          .execute();
        ids = operators.map((o) => o.user_id);
        note = "no operator is on duty: every operator is called";
      }
      const people = await Promise.all(ids.map((id) => personForUser(db, id)));
      return { people: people.filter((p): p is Person => p !== null), ...(note ? { note } : {}) };
    }
    case "visit_workers": {
      const workers = await visitsConcerned(db, alert, resident.time_zone)
        .innerJoin("workers", "workers.id", "visits.worker_id")
        .select(["workers.user_id", "workers.phone", "workers.legal_name"])
        .distinct()
        .execute();
      const people: Person[] = [];
      for (const w of workers) {
        const person = w.user_id
          ? await personForUser(db, w.user_id)
          : await personForPhone(db, w.phone, w.legal_name, {
              language: resident.language,
              timeZone: resident.time_zone,
            });
        if (person) people.push(person);
      }
      return people.length > 0 ? { people } : { people, note: "no worker has a visit today" };
    }
    case "provider_on_call": {
      const providers = await visitsConcerned(db, alert, resident.time_zone)
        .innerJoin("providers", "providers.id", "visits.provider_id")
        .where("providers.status", "=", "verified")
        .select(["providers.on_call_name", "providers.on_call_phone"])
        .distinct()
        .execute();
      const people: Person[] = [];
      for (const p of providers) {
        people.push(
          await personForPhone(db, p.on_call_phone, p.on_call_name, {
            language: resident.language,
            timeZone: resident.time_zone,
          }),
        );
      }
      return people.length > 0 ? { people } : { people, note: "no provider has a visit today" };
    }
  }
}

/**
 * The visits an alert concerns: its own visit when a visit raised it, otherwise the resident's
 * visits today (in the resident's time zone) that are still on.
 */
function visitsConcerned(db: Executor, alert: AlertRow, timeZone: string) {
  const q = db.selectFrom("visits");
  if (alert.source_type === "visit" && alert.source_id) {
    return q.where("visits.id", "=", alert.source_id);
  }
  return q
    .where("visits.resident_id", "=", alert.resident_id)
    .where("visits.local_date", "=", localParts(new Date(alert.opened_at), timeZone).date)
    .where("visits.status", "not in", ["cancelled", "refunded"]);
}

/** Runs step `step` of an alert; false when the alert moved on (the job is then a no-op). */
export async function runStep(
  trx: Executor,
  ctx: Pick<JobContext, "clock">,
  alertId: string,
  step: number,
): Promise<boolean> {
  const now = ctx.clock.now();
  const alert = await trx
    .selectFrom("alerts")
    .selectAll()
    .where("id", "=", alertId)
    .executeTakeFirst();
  if (alert?.status !== "open" || alert.step !== step || !alert.chain) return false;
  const chain: EscalationPolicy = PolicySchema.parse(JSON.parse(alert.chain));
  const last = chain.tiers.length - 1;
  const repeat = step - last;
  // Warnings go up the chain once; critical alerts repeat the last tier until someone answers.
  const limit = alert.severity === "critical" ? chain.repeatLimit : 0;
  if (repeat > limit || (alert.severity === "low" && step > 0)) {
    await trx
      .updateTable("alerts")
      .set({ step: step + 1, next_step_at: null })
      .where("id", "=", alertId)
      .execute();
    if (alert.severity !== "low") {
      await addTimeline(trx, alertId, now, "escalation_exhausted", null, {
        step,
        reason: "every tier was called and the repeats ran out; the alert stays open on the desk",
      });
    }
    return false;
  }
  const tierIndex = Math.min(step, last);
  const tier = chain.tiers[tierIndex]!;
  const resident = await trx
    .selectFrom("residents")
    .select(["language", "time_zone"])
    .where("id", "=", alert.resident_id)
    .executeTakeFirstOrThrow();
  const settings = await getSettings(trx);
  const seen = new Set<string>();
  const reached: { name: string; channels: string[]; skipped: string[] }[] = [];
  const notes: string[] = [];
  for (const recipient of tier.recipients) {
    const { people, note } = await resolveRecipient(trx, alert, recipient, resident);
    if (note) notes.push(note);
    for (const person of people) {
      if (seen.has(person.key)) continue;
      seen.add(person.key);
      const queued = await queueMessage(
        trx,
        person,
        {
          purpose: "alert_step",
          message: { t: "alert", alertId },
          channels: tier.channels,
          alertId,
          step,
          severity: alert.severity,
          dedupeKey: `alert:${alertId}:${step}`,
          requireConfirmedPhone: true,
        },
        now,
        settings,
      );
      reached.push({
        name: person.name,
        channels: queued.filter((q) => q.status === "pending").map((q) => q.channel),
        skipped: queued
          .filter((q) => q.status !== "pending")
          .map((q) => `${q.channel}: ${q.reason}`),
      });
    }
  }
  const type = step === 0 ? "notifying" : repeat > 0 ? "notifying_again" : "escalated_to_tier";
  await addTimeline(trx, alertId, now, type, null, {
    step,
    tier: tierIndex + 1,
    ...(repeat > 0 ? { repeat } : {}),
    recipients: reached,
    ...(notes.length > 0 ? { notes } : {}),
  });
  const hasNext = alert.severity !== "low" && step + 1 - last <= limit;
  if (!hasNext && alert.severity !== "low") {
    await addTimeline(trx, alertId, now, "escalation_exhausted", null, {
      step,
      reason: "every tier has been called and the repeats are done; the alert stays open",
    });
  }
  const waitMinutes = step < last ? tier.waitMinutes : chain.repeatEveryMinutes;
  const nextAt = hasNext ? addMs(now, waitMinutes * 60_000) : null;
  if (nextAt) await scheduleStep(trx, alertId, step + 1, nextAt, now, alert.severity);
  await trx
    .updateTable("alerts")
    .set({ step: step + 1, next_step_at: nextAt ? iso(nextAt) : null })
    .where("id", "=", alertId)
    .where("step", "=", step)
    .execute();
  return true;
}

/** Any open alert whose next step is overdue and has no job to run it gets one again. */
async function auditOverdue(ctx: JobContext) {
  const now = ctx.clock.now();
  const overdue = await ctx.db
    .selectFrom("alerts")
    .select(["id", "step", "next_step_at", "severity"])
    .where("status", "=", "open")
    .where("next_step_at", "<", iso(addMs(now, -5_000)))
    .execute();
  for (const alert of overdue) {
    const job = await ctx.db
      .selectFrom("jobs")
      .select("id")
      .where("dedupe_key", "=", stepDedupeKey(alert.id, alert.step))
      .where("status", "in", ["pending", "running"])
      .executeTakeFirst();
    if (job) continue;
    const resumed = await ctx.db.transaction().execute(async (trx) => {
      // Look again inside the transaction: the step may have run since the list was read.
      const still = await trx
        .selectFrom("alerts")
        .select("id")
        .where("id", "=", alert.id)
        .where("status", "=", "open")
        .where("step", "=", alert.step)
        .where("next_step_at", "=", alert.next_step_at)
        .executeTakeFirst();
      const pending = await trx
        .selectFrom("jobs")
        .select("id")
        .where("dedupe_key", "=", stepDedupeKey(alert.id, alert.step))
        .where("status", "in", ["pending", "running"])
        .executeTakeFirst();
      if (!still || pending) return false;
      await scheduleStep(trx, alert.id, alert.step, now, now, alert.severity);
      await addTimeline(trx, alert.id, now, "escalation_resumed", null, {
        step: alert.step,
        dueAt: alert.next_step_at,
        reason: "the next step was overdue with nothing scheduled to run it",
      });
      return true;
    });
    if (resumed)
      ctx.logger.warn({ alertId: alert.id, step: alert.step }, "resumed an overdue escalation");
  }
}
