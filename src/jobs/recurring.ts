// A job that runs every `everyMs`, as a chain of durable jobs: each run finishes itself and
// schedules the next in one transaction, and at start the chain is (re)started if missing.
import { z } from "zod";
import { addMs } from "../clock";
import type { Db } from "../db/database";
import type { JobContext, Scheduler } from "./scheduler";

export async function defineRecurring(
  scheduler: Scheduler,
  db: Db,
  spec: { kind: string; everyMs: number; firstInMs?: number; run(ctx: JobContext): Promise<void> },
): Promise<void> {
  scheduler.define({
    kind: spec.kind,
    payload: z.object({}),
    // A sweep that keeps failing must keep trying (a broken chain would silence a safety check
    // until the next restart): retry without end, at most one period apart.
    maxAttempts: 1_000_000_000,
    backoffMs: (attempt) => Math.min(1000 * 2 ** (attempt - 1), spec.everyMs),
    async handler(ctx) {
      await spec.run(ctx);
      await ctx.db.transaction().execute(async (trx) => {
        // Finish first: the next run may then take the same dedupe key.
        await ctx.completeWithin(trx);
        await scheduler.enqueue(
          trx,
          spec.kind,
          {},
          { runAt: addMs(ctx.clock.now(), spec.everyMs), dedupeKey: spec.kind },
        );
      });
    },
  });
  await scheduler.enqueue(
    db,
    spec.kind,
    {},
    { runAt: addMs(scheduler.clock.now(), spec.firstInMs ?? spec.everyMs), dedupeKey: spec.kind },
  );
}
