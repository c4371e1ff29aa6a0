// The visit watch: what happens when a worker does not come or does not leave. Late (start + 15
// min): an alert to the provider's on-call person and the worker, a notice to the family. Missed
// (start + 30): the late alert gives way to a missed-visit alert through the resident's own
// escalation chain, and the family may take the money back. Open (end + 2 h): an alert to the
// provider, then the operator desk; a visit nobody ever came to is refunded then.
import { z } from "zod";
import { closeAlert, findOpenAlert, raiseAlert } from "../alerts/alerts.service";
import { refundMissedVisit } from "../bookings/bookings.service";
import type { VisitRow } from "../bookings/bookings.table";
import { addMs, iso } from "../clock";
import type { Db, Executor, Trx } from "../db/database";
import type { EscalationPolicy } from "../escalation/policy";
import { defineRecurring } from "../jobs/recurring";
import type { Scheduler } from "../jobs/scheduler";
import { tellFamily } from "../notifications/audiences";
import { formatTime } from "../notifications/templates";
import { getSettings } from "../settings/settings.service";
import { DAY_REMINDER_JOB, lockVisit, residentName, sendDayReminder } from "./visits.service";
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

/**
 * The watch's safety net, every minute: any visit of the last two days whose check is overdue by
 * more than a minute and was not done (a visit created before the watch existed, a job lost or
 * consumed out of order) has it run now. Each check is idempotent, so meeting the visit's own
 * job does nothing twice.
 */
export async function auditWatch(db: Db, now: Date) {
  const settings = await getSettings(db);
  const grace = 60_000;
  const before = (minutes: number) => iso(addMs(now, -(minutes * 60_000 + grace)));
  const lateBefore = before(settings["visits.late_after_minutes"]);
  const missedBefore = before(settings["visits.missed_after_minutes"]);
  const openBefore = before(settings["visits.open_after_minutes"]);
  const rows = await db
    .selectFrom("visits")
    .selectAll()
    .where("status", "=", "scheduled")
    .where("starts_at", ">=", iso(addMs(now, -2 * 86_400_000)))
    .where("starts_at", "<=", lateBefore)
    .where("checked_out_at", "is", null)
    .orderBy("starts_at")
    .limit(500)
    .execute();
  let ran = 0;
  for (const v of rows) {
    const due: WatchCheck[] = [];
    if (!v.checked_in_at && !v.missed_at && v.starts_at <= missedBefore) due.push("missed");
    else if (!v.checked_in_at && !v.late_at && !v.missed_at) due.push("late");
    if (!v.open_alerted_at && v.ends_at <= openBefore) due.push("open");
    for (const check of due) {
      await db.transaction().execute((trx) => runCheck(trx, v.id, check, now));
      ran += 1;
    }
  }
  return ran;
}

export async function registerVisitJobs(scheduler: Scheduler, db: Db) {
  await defineRecurring(scheduler, db, {
    kind: "visits.watch_audit",
    everyMs: 60_000,
    async run(ctx) {
      const ran = await auditWatch(ctx.db, ctx.clock.now());
      if (ran > 0) {
        ctx.logger.warn({ ran }, "visit watch: overdue checks run by the audit");
        scheduler.nudge();
      }
    },
  });
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
  // One after another with check-ins, refunds and the visit's other checks (PostgreSQL).
  await lockVisit(trx, visitId);
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
    // Nobody came and nobody claimed the money back: it goes back now. The missed mark may be
    // missing when this check ran first (kincare was down through the whole visit).
    await mark(trx, visit, { missed_at: iso(now) }, now);
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
