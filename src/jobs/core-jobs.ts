// Jobs that belong to no single feature: housekeeping of the jobs table itself.
import type { Db } from "../db/database";
import { defineRecurring } from "./recurring";
import type { Scheduler } from "./scheduler";

const DAY = 86_400_000;

export async function registerCoreJobs(scheduler: Scheduler, db: Db): Promise<void> {
  await defineRecurring(scheduler, db, {
    kind: "jobs.prune",
    everyMs: DAY,
    firstInMs: 3_600_000,
    async run(ctx) {
      const removed = await scheduler.prune(7 * DAY);
      if (removed > 0) ctx.logger.info({ removed }, "pruned finished jobs older than a week");
    },
  });
}
