import { sql } from "kysely";
import { addMs, iso } from "../clock";
import type { Executor } from "../db/database";
import { newId } from "../ids";
import type { JobRow } from "./jobs.table";

export interface EnqueueJob {
  kind: string;
  payload: unknown;
  runAt: Date;
  maxAttempts: number;
  /** At most one pending or running job holds a given key; a second enqueue returns the first. */
  dedupeKey?: string;
  /** Higher runs first among due jobs; default 0. */
  priority?: number;
}

/** Priorities in use: the alarm path first. */
export const JOB_PRIORITY = { urgent: 10, high: 5, normal: 0 } as const;

export async function insertJob(db: Executor, job: EnqueueJob, now: Date): Promise<string> {
  const id = newId();
  const inserted = await db
    .insertInto("jobs")
    .values({
      id,
      kind: job.kind,
      payload: JSON.stringify(job.payload ?? null),
      status: "pending",
      due_at: iso(job.runAt),
      attempts: 0,
      max_attempts: job.maxAttempts,
      fence: 0,
      locked_by: null,
      locked_until: null,
      dedupe_key: job.dedupeKey ?? null,
      priority: job.priority ?? 0,
      last_error: null,
      created_at: iso(now),
      updated_at: iso(now),
      finished_at: null,
    })
    .onConflict((oc) =>
      oc.column("dedupe_key").where(sql<boolean>`status in ('pending', 'running')`).doNothing(),
    )
    .returning("id")
    .executeTakeFirst();
  if (inserted) return inserted.id;
  const existing = await db
    .selectFrom("jobs")
    .select("id")
    .where("dedupe_key", "=", job.dedupeKey ?? null)
    .where("status", "in", ["pending", "running"])
    .executeTakeFirstOrThrow();
  return existing.id;
}

/**
 * Claims up to `limit` due jobs (and jobs whose previous holder's lease ran out), bumping each
 * one's fence. On PostgreSQL the rows are locked with SKIP LOCKED so concurrent processes
 * never claim the same job.
 */
export async function claimDueJobs(
  db: Executor,
  opts: {
    kinds: string[];
    limit: number;
    workerId: string;
    now: Date;
    leaseMs: number;
    postgres: boolean;
    /** Only jobs at least this urgent (the slots kept free for them). */
    minPriority?: number;
  },
): Promise<JobRow[]> {
  if (opts.kinds.length === 0 || opts.limit <= 0) return [];
  const now = iso(opts.now);
  let candidates = db
    .selectFrom("jobs")
    .select("id")
    .where("kind", "in", opts.kinds)
    .where((eb) =>
      eb.or([
        eb.and([eb("status", "=", "pending"), eb("due_at", "<=", now)]),
        eb.and([eb("status", "=", "running"), eb("locked_until", "<", now)]),
      ]),
    )
    .$if(opts.minPriority !== undefined, (q) => q.where("priority", ">=", opts.minPriority!))
    .orderBy("priority", "desc")
    .orderBy("due_at")
    .limit(opts.limit);
  if (opts.postgres) candidates = candidates.forUpdate().skipLocked();
  return db
    .updateTable("jobs")
    .set((eb) => ({
      status: "running",
      attempts: eb("attempts", "+", 1),
      fence: eb("fence", "+", 1),
      locked_by: opts.workerId,
      locked_until: iso(addMs(opts.now, opts.leaseMs)),
      updated_at: now,
    }))
    .where("id", "in", candidates)
    .returningAll()
    .execute();
}

export async function completeJob(
  db: Executor,
  id: string,
  fence: number,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable("jobs")
    .set({
      status: "done",
      finished_at: iso(now),
      updated_at: iso(now),
      locked_by: null,
      locked_until: null,
    })
    .where("id", "=", id)
    .where("fence", "=", fence)
    .where("status", "=", "running")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function failJob(
  db: Executor,
  job: Pick<JobRow, "id" | "fence" | "attempts" | "max_attempts">,
  error: string,
  retryAt: Date,
  now: Date,
): Promise<"retry" | "dead" | "stale"> {
  const dead = job.attempts >= job.max_attempts;
  const result = await db
    .updateTable("jobs")
    .set({
      status: dead ? "dead" : "pending",
      due_at: dead ? undefined : iso(retryAt),
      last_error: error.slice(0, 2000),
      locked_by: null,
      locked_until: null,
      updated_at: iso(now),
      finished_at: dead ? iso(now) : null,
    })
    .where("id", "=", job.id)
    .where("fence", "=", job.fence)
    .where("status", "=", "running")
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) return "stale";
  return dead ? "dead" : "retry";
}

export async function extendLease(
  db: Executor,
  id: string,
  fence: number,
  until: Date,
): Promise<boolean> {
  const result = await db
    .updateTable("jobs")
    .set({ locked_until: iso(until) })
    .where("id", "=", id)
    .where("fence", "=", fence)
    .where("status", "=", "running")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** SQLite runs in one process: a job found running at start belonged to a process that died. */
export async function releaseOrphanedJobs(db: Executor, now: Date): Promise<number> {
  const result = await db
    .updateTable("jobs")
    .set((eb) => ({
      status: "pending",
      fence: eb("fence", "+", 1),
      locked_by: null,
      locked_until: null,
      updated_at: iso(now),
    }))
    .where("status", "=", "running")
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function pruneFinishedJobs(db: Executor, before: Date): Promise<number> {
  const result = await db
    .deleteFrom("jobs")
    .where("status", "=", "done")
    .where("finished_at", "<", iso(before))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function findJob(db: Executor, id: string): Promise<JobRow | undefined> {
  return db.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirst();
}

/** When the next pending job falls due after `now` (the scheduler sleeps no longer than that). */
export async function nextDueAt(db: Executor, now: Date): Promise<string | undefined> {
  const row = await db
    .selectFrom("jobs")
    .select((eb) => eb.fn.min("due_at").as("due"))
    .where("status", "=", "pending")
    .where("due_at", ">", iso(now))
    .executeTakeFirst();
  return (row?.due as string | null | undefined) ?? undefined;
}
