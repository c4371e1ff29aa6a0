// The visit watch's durable timers, set when a visit is created (in the same transaction): no
// check-in by start + 15 min is late, by start + 30 min missed, no check-out by end + 2 h open.
// Each job looks at the visit when it runs and does nothing if the worker came.
import type { VisitRow } from "../bookings/bookings.table";
import { addMs } from "../clock";
import type { Executor } from "../db/database";
import { insertJob, JOB_PRIORITY } from "../jobs/jobs.repository";
import { getSettings } from "../settings/settings.service";

export const VISIT_WATCH_JOB = "visits.watch";
export const watchChecks = ["late", "missed", "open"] as const;
export type WatchCheck = (typeof watchChecks)[number];

export async function scheduleVisitWatch(
  db: Executor,
  visit: Pick<VisitRow, "id" | "starts_at" | "ends_at">,
  now: Date,
) {
  const settings = await getSettings(db);
  const start = new Date(visit.starts_at);
  const at: Record<WatchCheck, Date> = {
    late: addMs(start, settings["visits.late_after_minutes"] * 60_000),
    missed: addMs(start, settings["visits.missed_after_minutes"] * 60_000),
    open: addMs(new Date(visit.ends_at), settings["visits.open_after_minutes"] * 60_000),
  };
  for (const check of watchChecks) {
    await insertJob(
      db,
      {
        kind: VISIT_WATCH_JOB,
        payload: { visitId: visit.id, check },
        runAt: at[check],
        maxAttempts: 1_000_000,
        dedupeKey: `visit-watch:${visit.id}:${check}`,
        priority: JOB_PRIORITY.high,
      },
      now,
    );
  }
}
