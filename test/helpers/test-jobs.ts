// A job kind for scheduler tests: its one visible effect is a row in `job_effects`, written in
// the same transaction that marks the job done, so a duplicate or lost run shows up as a count.
import { sql } from "kysely";
import { z } from "zod";
import type { Db } from "../../src/db/database";
import type { JobDefinition } from "../../src/jobs/scheduler";

export const EFFECT_KIND = "test.effect";

export const effectPayload = z.object({ key: z.string(), hang: z.boolean().optional() });
export type EffectPayload = z.infer<typeof effectPayload>;

export async function createEffectTables(db: Db): Promise<void> {
  await sql`CREATE TABLE job_effects (job_id TEXT NOT NULL, job_key TEXT NOT NULL, worker_pid INTEGER NOT NULL, fence INTEGER NOT NULL)`.execute(
    db,
  );
  await sql`CREATE TABLE job_starts (job_id TEXT NOT NULL, worker_pid INTEGER NOT NULL)`.execute(
    db,
  );
}

export interface EffectRow {
  job_id: string;
  job_key: string;
  worker_pid: number;
  fence: number;
}

export async function effects(db: Db): Promise<EffectRow[]> {
  const { rows } =
    await sql<EffectRow>`SELECT job_id, job_key, worker_pid, fence FROM job_effects ORDER BY job_key`.execute(
      db,
    );
  return rows.map((r) => ({ ...r, worker_pid: Number(r.worker_pid), fence: Number(r.fence) }));
}

export function effectJob(options: {
  /** Jobs with `hang: true` hang forever (after recording that they started) when this is set. */
  hang?: boolean;
  /** How long each run takes before writing its effect. */
  workMs?: number;
  leaseMs?: number;
}): JobDefinition<EffectPayload> {
  return {
    kind: EFFECT_KIND,
    payload: effectPayload,
    maxAttempts: 5,
    backoffMs: () => 200,
    ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
    async handler(ctx, payload) {
      if (payload.hang && options.hang) {
        await sql`INSERT INTO job_starts (job_id, worker_pid) VALUES (${ctx.jobId}, ${process.pid})`.execute(
          ctx.db,
        );
        await new Promise(() => undefined);
      }
      if (options.workMs) await new Promise((r) => setTimeout(r, options.workMs));
      await ctx.db.transaction().execute(async (trx) => {
        await sql`INSERT INTO job_effects (job_id, job_key, worker_pid, fence) VALUES (${ctx.jobId}, ${payload.key}, ${process.pid}, ${ctx.fence})`.execute(
          trx,
        );
        await ctx.completeWithin(trx);
      });
    },
  };
}
