// Jobs that belong to no single feature: housekeeping of the jobs table itself.
import { z } from "zod";
import { addMs } from "../clock";
import type { Db } from "../db/database";
import type { Scheduler } from "./scheduler";

const DAY = 86_400_000;
const PRUNE = "jobs.prune";

export async function registerCoreJobs(scheduler: Scheduler, db: Db): Promise<void> {
  scheduler.define({
    kind: PRUNE,
    payload: z.object({}),
    maxAttempts: 3,
    async handler(ctx) {
      const removed = await scheduler.prune(7 * DAY);
      if (removed > 0) ctx.logger.info({ removed }, "pruned finished jobs older than a week");
      await ctx.db.transaction().execute(async (trx) => {
        // Finish first: the next run may then take the same dedupe key.
        await ctx.completeWithin(trx);
        await scheduler.enqueue(
          trx,
          PRUNE,
          {},
          { runAt: addMs(ctx.clock.now(), DAY), dedupeKey: PRUNE },
        );
      });
    },
  });
  await scheduler.enqueue(
    db,
    PRUNE,
    {},
    { runAt: addMs(scheduler.clock.now(), 3_600_000), dedupeKey: PRUNE },
  );
}
