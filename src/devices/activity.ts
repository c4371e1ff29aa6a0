// The rules about silence: no sign of life for the care plan's "no motion" period, and no
// check-in (or any activity) by the plan's daily deadline in the resident's own time zone.
// Run by a durable job every minute; both are muted while the resident is paused.
import { closeAlert, findOpenAlert, raiseAlert } from "../alerts/alerts.service";
import { currentPlan } from "../careplans/careplans.service";
import type { Db, Executor } from "../db/database";
import { localParts, zonedToUtc } from "../time";

export async function sweepActivity(
  db: Db,
  now: Date,
): Promise<{ raised: number; resolved: number }> {
  // Only residents with a working device are watched; the first device's registration is the
  // baseline before anything was heard, so a new pendant does not alarm at once.
  const rows = await db
    .selectFrom("residents as r")
    .innerJoin("devices as d", (j) =>
      j.onRef("d.resident_id", "=", "r.id").on("d.status", "=", "active"),
    )
    .leftJoin("resident_activity as a", "a.resident_id", "r.id")
    .select((eb) => [
      "r.id",
      "r.time_zone",
      "a.last_activity_at",
      "a.last_check_in_at",
      eb.fn.min("d.created_at").as("watched_since"),
    ])
    .where("r.status", "=", "active")
    .groupBy(["r.id", "r.time_zone", "a.last_activity_at", "a.last_check_in_at"])
    .execute();
  let raised = 0;
  let resolved = 0;
  // One short transaction per resident: a sweep over hundreds of residents must not hold the
  // (SQLite) connection for long, or an SOS waits behind it.
  for (const row of rows) {
    const done = await db.transaction().execute((trx) => sweepOne(trx, row, now));
    raised += done.raised;
    resolved += done.resolved;
  }
  return { raised, resolved };
}

async function sweepOne(
  db: Executor,
  row: {
    id: string;
    time_zone: string;
    last_activity_at: string | null;
    last_check_in_at: string | null;
    watched_since: string | null;
  },
  now: Date,
): Promise<{ raised: number; resolved: number }> {
  let raised = 0;
  let resolved = 0;
  const lastActivity = [row.last_activity_at, row.watched_since]
    .filter((v): v is string => !!v)
    .sort()
    .at(-1)!;
  const { plan } = await currentPlan(db, row.id);

  const quietMs = now.getTime() - Date.parse(lastActivity);
  const quiet = await findOpenAlert(db, row.id, "no_activity");
  if (quietMs > plan.noMotionHours * 3_600_000) {
    if (!quiet) {
      await raiseAlert(
        db,
        {
          residentId: row.id,
          kind: "no_activity",
          severity: "warning",
          sourceType: "check_in",
          sourceId: null,
          openKey: "no_activity",
          summary: `No sign of activity for ${Math.floor(quietMs / 3_600_000)} hours`,
          details: { lastActivityAt: lastActivity },
        },
        now,
      );
      raised += 1;
    }
  } else if (quiet && lastActivity > quiet.opened_at) {
    await closeAlert(db, quiet, "resolved", "activity seen again", now);
    resolved += 1;
  }

  const missed = await findOpenAlert(db, row.id, "no_check_in");
  if (plan.checkInDeadline) {
    const today = localParts(now, row.time_zone).date;
    const deadline = zonedToUtc(today, plan.checkInDeadline, row.time_zone);
    const dayStart = zonedToUtc(today, "00:00", row.time_zone).toISOString();
    if (now >= deadline && lastActivity < dayStart && !missed) {
      await raiseAlert(
        db,
        {
          residentId: row.id,
          kind: "no_check_in",
          severity: "warning",
          sourceType: "check_in",
          sourceId: today,
          openKey: "no_check_in",
          summary: `No check-in today by ${plan.checkInDeadline}`,
          details: {
            localDate: today,
            deadline: plan.checkInDeadline,
            lastActivityAt: lastActivity,
          },
        },
        now,
      );
      return { raised: raised + 1, resolved };
    }
  }
  if (missed && lastActivity > missed.opened_at) {
    await closeAlert(db, missed, "resolved", "the resident checked in", now);
    resolved += 1;
  }
  return { raised, resolved };
}
