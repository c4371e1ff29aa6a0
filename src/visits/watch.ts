// The visit watch: what happens when a worker does not come or does not leave. Late (start + 15
// min): an alert to the provider's on-call person and the worker, a notice to the family. Missed
// (start + 30): the late alert gives way to a missed-visit alert through the resident's own
// escalation chain, and the family may take the money back. Open (end + 2 h): an alert to the
// provider, then the operator desk; a visit nobody ever came to is refunded then.
import { z } from "zod";
import { closeAlert, findOpenAlert, raiseAlert } from "../alerts/alerts.service";
import { refundMissedVisit } from "../bookings/bookings.service";
import type { VisitRow } from "../bookings/bookings.table";
import { iso } from "../clock";
import type { Executor, Trx } from "../db/database";
import type { EscalationPolicy } from "../escalation/policy";
import type { Scheduler } from "../jobs/scheduler";
import { tellFamily } from "../notifications/audiences";
import { formatTime } from "../notifications/templates";
import { DAY_REMINDER_JOB, residentName, sendDayReminder } from "./visits.service";
import { VISIT_WATCH_JOB, type WatchCheck, watchChecks } from "./watch-schedule";

/** A late visit is the provider's to sort out first: its on-call person and the worker. */
const lateChain: EscalationPolicy = {
  tiers: [
    {
      recipients: [{ kind: "provider_on_call" }, { kind: "visit_workers" }],
      channels: ["push", "sms"],
      waitMinutes: 15,
    },
  ],
  repeatEveryMinutes: 15,
  repeatLimit: 0,
};

/** A visit never checked out: the provider, then the operator desk. */
const openChain: EscalationPolicy = {
  tiers: [
    {
      recipients: [{ kind: "visit_workers" }, { kind: "provider_on_call" }],
      channels: ["push", "sms"],
      waitMinutes: 20,
    },
    { recipients: [{ kind: "desk" }], channels: ["push", "sms"], waitMinutes: 30 },
  ],
  repeatEveryMinutes: 60,
  repeatLimit: 2,
};

export function registerVisitJobs(scheduler: Scheduler) {
  scheduler.define({
    kind: VISIT_WATCH_JOB,
    payload: z.object({ visitId: z.string(), check: z.enum(watchChecks) }),
    maxAttempts: 1_000_000,
    async handler(ctx, { visitId, check }) {
      const raised = await ctx.db.transaction().execute(async (trx) => {
        const done = await runCheck(trx, visitId, check, ctx.clock.now());
        await ctx.completeWithin(trx);
        return done;
      });
      if (raised) {
        ctx.logger.info({ visitId, check }, "visit watch raised an alert");
        scheduler.nudge();
      }
    },
  });
  scheduler.define({
    kind: DAY_REMINDER_JOB,
    payload: z.object({
      workerId: z.string(),
      date: z.string(),
      firstStartsAt: z.string(),
      timeZone: z.string(),
    }),
    maxAttempts: 20,
    async handler(ctx, payload) {
      const sent = await ctx.db.transaction().execute(async (trx) => {
        const done = await sendDayReminder(trx, payload, ctx.clock.now());
        await ctx.completeWithin(trx);
        return done;
      });
      if (sent) scheduler.nudge();
    },
  });
}

/** Runs one check of the watch; true when it raised an alert. Repeating it does nothing more. */
export async function runCheck(trx: Trx, visitId: string, check: WatchCheck, now: Date) {
  const visit = await trx
    .selectFrom("visits")
    .selectAll()
    .where("id", "=", visitId)
    .executeTakeFirst();
  if (visit?.status !== "scheduled") return false;
  const resident = await trx
    .selectFrom("residents")
    .selectAll()
    .where("id", "=", visit.resident_id)
    .executeTakeFirstOrThrow();
  const name = residentName(resident);
  const at = formatTime(visit.starts_at, resident.time_zone, "en");
  const details = {
    visitId: visit.id,
    startsAt: visit.starts_at,
    endsAt: visit.ends_at,
    workerId: visit.worker_id,
    providerId: visit.provider_id,
  };

  if (check === "late") {
    if (visit.checked_in_at || visit.late_at || visit.missed_at) return false;
    if (!(await mark(trx, visit, { late_at: iso(now) }, now))) return false;
    await raiseAlert(
      trx,
      {
        residentId: visit.resident_id,
        kind: "visit_late",
        severity: "warning",
        sourceType: "visit",
        sourceId: visit.id,
        openKey: `visit-late:${visit.id}`,
        summary: `No check-in yet for ${name}'s visit at ${at}`,
        details,
        chain: lateChain,
      },
      now,
    );
    await tellFamily(
      trx,
      visit.resident_id,
      {
        purpose: "visit_late",
        message: { t: "visit_late", residentName: name, startsAt: visit.starts_at },
        dedupeKey: `visit-late:${visit.id}`,
        channels: ["push", "sms"],
      },
      now,
    );
    return true;
  }

  if (check === "missed") {
    if (visit.checked_in_at || visit.missed_at) return false;
    // A missed visit was late first, whichever check runs first (both are due after a restart).
    if (!visit.late_at) await runCheck(trx, visitId, "late", now);
    if (!(await mark(trx, visit, { missed_at: iso(now) }, now))) return false;
    const late = await findOpenAlert(trx, visit.resident_id, `visit-late:${visit.id}`);
    if (late) await closeAlert(trx, late, "resolved", "the visit is now missed", now);
    await raiseAlert(
      trx,
      {
        residentId: visit.resident_id,
        kind: "visit_missed",
        severity: "warning",
        sourceType: "visit",
        sourceId: visit.id,
        openKey: `visit-missed:${visit.id}`,
        summary: `Nobody has come to ${name}'s visit at ${at}`,
        details,
      },
      now,
    );
    return true;
  }

  // open: checked in and never out, or never came at all.
  if (visit.checked_out_at || visit.open_alerted_at) return false;
  if (!visit.checked_in_at) {
    if (!visit.missed_at) return false;
    // Nobody came and nobody claimed the money back: it goes back now.
    await refundMissedVisit(trx, visit.id, null, now);
    return false;
  }
  if (!(await mark(trx, visit, { open_alerted_at: iso(now) }, now))) return false;
  await raiseAlert(
    trx,
    {
      residentId: visit.resident_id,
      kind: "visit_open",
      severity: "warning",
      sourceType: "visit",
      sourceId: visit.id,
      openKey: `visit-open:${visit.id}`,
      summary: `${name}'s visit at ${at} was never checked out`,
      details,
      chain: openChain,
    },
    now,
  );
  return true;
}

/**
 * Marks the visit, only if it still needs the mark: false when a concurrent check-in, check-out,
 * refund or other check got there first. On PostgreSQL the update waits for the visit's row and
 * looks at it again once the other transaction is done, so the late and missed checks running at
 * once (after a restart) cannot both act on what they read before, nor a late alert follow a
 * missed one.
 */
async function mark(
  db: Executor,
  visit: VisitRow,
  set: Partial<Pick<VisitRow, "late_at" | "missed_at" | "open_alerted_at">>,
  now: Date,
) {
  let q = db
    .updateTable("visits")
    .set({ ...set, updated_at: iso(now) })
    .where("id", "=", visit.id)
    .where("status", "=", "scheduled");
  if (set.late_at) {
    q = q
      .where("late_at", "is", null)
      .where("missed_at", "is", null)
      .where("checked_in_at", "is", null);
  }
  if (set.missed_at) q = q.where("missed_at", "is", null).where("checked_in_at", "is", null);
  if (set.open_alerted_at) {
    q = q.where("open_alerted_at", "is", null).where("checked_out_at", "is", null);
  }
  const updated = await q.executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}
