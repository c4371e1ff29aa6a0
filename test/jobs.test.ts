// The durable scheduler: jobs are rows, created with the change that needs them, run when due,
// retried with backoff, fenced against stale runs, and never lost to a crash or a restart.
import { Writable } from "node:stream";
import { sql } from "kysely";
import { afterEach, describe, expect, test } from "vitest";
import { z } from "zod";
import type { Db } from "../src/db/database";
import { findJob } from "../src/jobs/jobs.repository";
import {
  type JobContext,
  type JobDefinition,
  Scheduler,
  StaleJobError,
} from "../src/jobs/scheduler";
import { createLogger } from "../src/logger";
import { FakeClock } from "./helpers/clock";
import { eventually, killLeftovers, type Spawned, spawnTs } from "./helpers/processes";
import { createTestDatabase, migrated, type TestDatabase, usingPostgres } from "./helpers/test-db";
import { createEffectTables, EFFECT_KIND, effectJob, effects } from "./helpers/test-jobs";

interface Harness {
  db: Db;
  dialect: "sqlite" | "postgres";
  clock: FakeClock;
  testDb: TestDatabase;
  scheduler(): Scheduler;
  logText(): string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killLeftovers();
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

async function harness(): Promise<Harness> {
  const testDb = await createTestDatabase();
  const { db, dialect, close } = await migrated(testDb);
  const clock = new FakeClock();
  const lines: string[] = [];
  const logger = createLogger(
    "info",
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  const schedulers: Scheduler[] = [];
  cleanups.push(async () => {
    for (const s of schedulers) await s.stop();
    await close();
    await testDb.drop();
  });
  return {
    db,
    dialect,
    clock,
    testDb,
    scheduler: () => {
      const s = new Scheduler({ db, dialect, clock, logger, pollMs: 10, concurrency: 4 });
      schedulers.push(s);
      return s;
    },
    logText: () => lines.join(""),
  };
}

/** A job kind that records each run, and fails while `failures` says so. */
function recordingJob(opts: Partial<JobDefinition<{ n: number }>> & { failTimes?: number } = {}) {
  const runs: { n: number; attempt: number; at: string }[] = [];
  const { failTimes = 0, ...rest } = opts;
  const definition: JobDefinition<{ n: number }> = {
    kind: "test.recording",
    payload: z.object({ n: z.number() }),
    ...rest,
    async handler(ctx: JobContext, payload) {
      runs.push({ n: payload.n, attempt: ctx.attempt, at: ctx.clock.now().toISOString() });
      if (runs.length <= failTimes) throw new Error(`the printer is on fire (run ${runs.length})`);
    },
  };
  return { definition, runs };
}

describe("the durable scheduler", () => {
  test("a job enqueued in a transaction that rolls back does not exist", async () => {
    const h = await harness();
    const s = h.scheduler();
    const { definition, runs } = recordingJob();
    s.define(definition);

    let rolledBack: string | undefined;
    await expect(
      h.db.transaction().execute(async (trx) => {
        rolledBack = await s.enqueue(trx, definition, { n: 1 });
        throw new Error("the change that needed the job failed");
      }),
    ).rejects.toThrow("the change that needed the job failed");
    expect(rolledBack).toEqual(expect.any(String));
    expect(await findJob(h.db, rolledBack!)).toBeUndefined();

    const committed = await h.db
      .transaction()
      .execute((trx) => s.enqueue(trx, definition, { n: 2 }));
    expect(await findJob(h.db, committed)).toMatchObject({
      status: "pending",
      kind: "test.recording",
    });

    expect(await s.drain()).toBe(1);
    expect(runs.map((r) => r.n)).toEqual([2]);
  });

  test("a job due later does not run before its time, and runs once after", async () => {
    const h = await harness();
    const s = h.scheduler();
    const { definition, runs } = recordingJob();
    s.define(definition);
    const dueAt = new Date(h.clock.now().getTime() + 10 * 60_000);
    const id = await s.enqueue(h.db, definition, { n: 7 }, { runAt: dueAt });

    expect(await s.drain()).toBe(0);
    h.clock.advance(10 * 60_000 - 1);
    expect(await s.drain()).toBe(0);
    expect(runs).toEqual([]);

    h.clock.advance(1);
    expect(await s.drain()).toBe(1);
    expect(runs).toEqual([{ n: 7, attempt: 1, at: dueAt.toISOString() }]);
    expect(await findJob(h.db, id)).toMatchObject({ status: "done", attempts: 1 });

    h.clock.advance(60 * 60_000);
    expect(await s.drain()).toBe(0);
    expect(runs).toHaveLength(1);
  });

  test("a running scheduler picks a due job up by itself", async () => {
    const h = await harness();
    const s = h.scheduler();
    const { definition, runs } = recordingJob();
    s.define(definition);
    await s.start();
    const id = await s.enqueue(h.db, definition, { n: 3 });
    s.nudge();
    await eventually(async () => (await findJob(h.db, id))?.status === "done", {
      what: "job done",
    });
    expect(runs.map((r) => r.n)).toEqual([3]);
  });

  test("a failing handler is retried with exponential backoff and ends dead after maxAttempts", async () => {
    const h = await harness();
    const s = h.scheduler();
    const { definition, runs } = recordingJob({ maxAttempts: 3, failTimes: 99 });
    s.define(definition);
    const id = await s.enqueue(h.db, definition, { n: 1 });
    const start = h.clock.now().getTime();

    expect(await s.drain()).toBe(1);
    let job = await findJob(h.db, id);
    expect(job).toMatchObject({
      status: "pending",
      attempts: 1,
      last_error: "the printer is on fire (run 1)",
    });
    // Default backoff: 1 s after the first failure, then 2 s.
    expect(job!.due_at).toBe(new Date(start + 1000).toISOString());

    h.clock.advance(999);
    expect(await s.drain()).toBe(0);
    h.clock.advance(1);
    expect(await s.drain()).toBe(1);
    job = await findJob(h.db, id);
    expect(job).toMatchObject({ status: "pending", attempts: 2 });
    expect(job!.due_at).toBe(new Date(start + 1000 + 2000).toISOString());

    h.clock.advance(2000);
    expect(await s.drain()).toBe(1);
    job = await findJob(h.db, id);
    expect(job).toMatchObject({
      status: "dead",
      attempts: 3,
      last_error: "the printer is on fire (run 3)",
      locked_by: null,
    });
    expect(job!.finished_at).toBe(h.clock.now().toISOString());

    h.clock.advance(24 * 3_600_000);
    expect(await s.drain()).toBe(0);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(h.logText()).toContain("job failed for the last time");
  });

  test("a job that fails once succeeds on its retry, with the job's own backoff", async () => {
    const h = await harness();
    const s = h.scheduler();
    const { definition, runs } = recordingJob({ failTimes: 1, backoffMs: (n) => n * 30_000 });
    s.define(definition);
    const id = await s.enqueue(h.db, definition, { n: 5 });
    await s.drain();
    h.clock.advance(29_999);
    expect(await s.drain()).toBe(0);
    h.clock.advance(1);
    expect(await s.drain()).toBe(1);
    expect(await findJob(h.db, id)).toMatchObject({ status: "done", attempts: 2 });
    expect(runs.map((r) => r.attempt)).toEqual([1, 2]);
  });

  test("a dedupe key returns the same job while it is pending, and a new one once it is done", async () => {
    const h = await harness();
    const s = h.scheduler();
    const { definition, runs } = recordingJob();
    s.define(definition);
    const first = await s.enqueue(h.db, definition, { n: 1 }, { dedupeKey: "resident-42-checkin" });
    const second = await s.enqueue(
      h.db,
      definition,
      { n: 2 },
      { dedupeKey: "resident-42-checkin" },
    );
    const other = await s.enqueue(h.db, definition, { n: 3 }, { dedupeKey: "resident-43-checkin" });
    expect(second).toBe(first);
    expect(other).not.toBe(first);
    const { rows } = await sql<{
      n: number;
    }>`SELECT count(*) AS n FROM jobs WHERE kind = 'test.recording'`.execute(h.db);
    expect(Number(rows[0]!.n)).toBe(2);

    await s.drain();
    expect(runs.map((r) => r.n).sort()).toEqual([1, 3]);
    const third = await s.enqueue(h.db, definition, { n: 4 }, { dedupeKey: "resident-42-checkin" });
    expect(third).not.toBe(first);
  });

  test("an unknown kind or a payload that does not fit its schema cannot be enqueued", async () => {
    const h = await harness();
    const s = h.scheduler();
    const { definition } = recordingJob();
    s.define(definition);
    await expect(s.enqueue(h.db, "no.such.kind", {})).rejects.toThrow(/unknown job kind/);
    await expect(s.enqueue(h.db, definition, { n: "one" } as never)).rejects.toThrow();
    expect(() => s.define(definition)).toThrow(/defined twice/);
  });

  test("a stale run whose lease was taken over cannot complete: its transaction rolls back", async () => {
    const h = await harness();
    await createEffectTables(h.db);
    let releaseFirst!: () => void;
    const firstMayFinish = new Promise<void>((r) => {
      releaseFirst = r;
    });
    let firstStarted!: () => void;
    const firstIsRunning = new Promise<void>((r) => {
      firstStarted = r;
    });
    const outcomes: { fence: number; error?: unknown }[] = [];
    const fenced: JobDefinition<{ key: string }> = {
      kind: "test.fenced",
      payload: z.object({ key: z.string() }),
      leaseMs: 60_000,
      async handler(ctx, payload) {
        if (ctx.fence === 1) {
          firstStarted();
          await firstMayFinish;
        }
        try {
          await ctx.db.transaction().execute(async (trx) => {
            await sql`INSERT INTO job_effects (job_id, job_key, worker_pid, fence) VALUES (${ctx.jobId}, ${payload.key}, ${process.pid}, ${ctx.fence})`.execute(
              trx,
            );
            await ctx.completeWithin(trx);
          });
          outcomes.push({ fence: ctx.fence });
        } catch (error) {
          outcomes.push({ fence: ctx.fence, error });
          throw error;
        }
      },
    };
    const a = h.scheduler();
    const b = h.scheduler();
    a.define(fenced);
    b.define(fenced);
    const id = await a.enqueue(h.db, fenced, { key: "escalate" });

    const firstRun = a.drain();
    await firstIsRunning;
    // The first holder stalls past its lease; another process takes the job over.
    h.clock.advance(60_001);
    expect(await b.drain()).toBe(1);
    expect(await findJob(h.db, id)).toMatchObject({ status: "done", fence: 2, attempts: 2 });

    releaseFirst();
    await firstRun;
    expect(outcomes).toEqual([{ fence: 2 }, { fence: 1, error: expect.any(StaleJobError) }]);
    const rows = await effects(h.db);
    expect(rows.map((r) => r.fence)).toEqual([2]);
    // The stale run neither re-opened nor failed the job.
    expect(await findJob(h.db, id)).toMatchObject({ status: "done", fence: 2, last_error: null });
  });

  test("a job whose holder is alive keeps its lease: nobody else claims it", async () => {
    const h = await harness();
    let release!: () => void;
    const hold = new Promise<void>((r) => {
      release = r;
    });
    let started!: () => void;
    const running = new Promise<void>((r) => {
      started = r;
    });
    const slow: JobDefinition<Record<string, never>> = {
      kind: "test.slow",
      payload: z.object({}),
      leaseMs: 60_000,
      async handler() {
        started();
        await hold;
      },
    };
    const a = h.scheduler();
    const b = h.scheduler();
    a.define(slow);
    b.define(slow);
    await a.enqueue(h.db, slow, {});
    const run = a.drain();
    await running;
    h.clock.advance(59_000);
    expect(await b.drain()).toBe(0);
    release();
    expect(await run).toBe(1);
  });
});

describe("jobs survive crashes and restarts", () => {
  function worker(testDb: TestDatabase, env: Record<string, string> = {}): Spawned {
    return spawnTs("test/helpers/job-worker.ts", {
      ...testDb.env,
      ...(testDb.schema ? { DB_SCHEMA: testDb.schema } : {}),
      ...env,
    });
  }

  async function enqueueEffects(h: Harness, payloads: { key: string; hang?: boolean }[]) {
    const s = h.scheduler();
    const def = effectJob({});
    s.define(def);
    return h.db.transaction().execute(async (trx) => {
      const ids: string[] = [];
      for (const p of payloads) ids.push(await s.enqueue(trx, def, p, { runAt: new Date() }));
      return ids;
    });
  }

  async function statusCounts(db: Db) {
    const { rows } = await sql<{
      status: string;
      n: number;
    }>`SELECT status, count(*) AS n FROM jobs WHERE kind = ${EFFECT_KIND} GROUP BY status`.execute(
      db,
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  test("a worker killed mid-job loses nothing: the next worker finishes it exactly once", async () => {
    const h = await harness();
    await createEffectTables(h.db);
    const ids = await enqueueEffects(h, [
      { key: "a-hangs", hang: true },
      { key: "b" },
      { key: "c" },
      { key: "d" },
    ]);

    const first = worker(h.testDb, { JOB_HANG: "1" });
    await first.waitFor(/ready/);
    await eventually(
      async () => {
        const { rows } = await sql<{ job_id: string }>`SELECT job_id FROM job_starts`.execute(h.db);
        return rows.some((r) => r.job_id === ids[0]);
      },
      { what: "the hanging job to start" },
    );
    first.child.kill("SIGKILL");
    expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });

    const stuck = await findJob(h.db, ids[0]!);
    expect(stuck).toMatchObject({ status: "running", fence: 1 });
    expect((await effects(h.db)).map((e) => e.job_key)).not.toContain("a-hangs");

    const second = worker(h.testDb);
    await second.waitFor(/ready/);
    await eventually(async () => (await statusCounts(h.db)).done === 4, {
      what: "every job done",
    });

    const rows = await effects(h.db);
    expect(rows.map((r) => r.job_key)).toEqual(["a-hangs", "b", "c", "d"]);
    expect(new Set(rows.map((r) => r.job_id))).toEqual(new Set(ids));
    const resumed = rows.find((r) => r.job_key === "a-hangs")!;
    expect(resumed.worker_pid).toBe(second.child.pid);
    expect(resumed.fence).toBeGreaterThanOrEqual(2);

    second.child.kill("SIGTERM");
    expect((await second.exited).code).toBe(0);
    expect(second.output()).toContain("stopped");
  });

  test("jobs enqueued while no worker runs are done once a worker starts", async () => {
    const h = await harness();
    await createEffectTables(h.db);
    const first = worker(h.testDb);
    await first.waitFor(/ready/);
    first.child.kill("SIGTERM");
    const firstExit = await first.exited;
    expect(firstExit.code, `${JSON.stringify(firstExit)}\n${first.output()}`).toBe(0);

    const ids = await enqueueEffects(h, [{ key: "x" }, { key: "y" }]);
    expect(await statusCounts(h.db)).toEqual({ pending: 2 });

    const second = worker(h.testDb);
    await second.waitFor(/ready/);
    await eventually(async () => (await statusCounts(h.db)).done === 2, { what: "jobs done" });
    expect((await effects(h.db)).map((r) => r.job_id).sort()).toEqual([...ids].sort());
  });
});

describe.skipIf(!usingPostgres)("several processes on PostgreSQL", () => {
  test("two workers at once run each of 200 jobs exactly once, sharing the work", async () => {
    const h = await harness();
    await createEffectTables(h.db);
    const env = {
      ...h.testDb.env,
      DB_SCHEMA: h.testDb.schema!,
      JOB_WORK_MS: "5",
      JOB_LEASE_MS: "30000",
    };
    const one = spawnTs("test/helpers/job-worker.ts", env);
    const two = spawnTs("test/helpers/job-worker.ts", env);
    await Promise.all([one.waitFor(/ready/), two.waitFor(/ready/)]);

    const s = h.scheduler();
    const def = effectJob({});
    s.define(def);
    const ids = await h.db.transaction().execute(async (trx) => {
      const out: string[] = [];
      for (let i = 0; i < 200; i++) {
        out.push(
          await s.enqueue(
            trx,
            def,
            { key: `job-${String(i).padStart(3, "0")}` },
            { runAt: new Date() },
          ),
        );
      }
      return out;
    });

    await eventually(
      async () => {
        const { rows } = await sql<{
          n: number;
        }>`SELECT count(*) AS n FROM jobs WHERE status = 'done'`.execute(h.db);
        return Number(rows[0]!.n) === 200;
      },
      { timeoutMs: 60_000, what: "200 jobs done" },
    );

    const { rows: perJob } = await sql<{
      job_id: string;
      n: number;
    }>`SELECT job_id, count(*) AS n FROM job_effects GROUP BY job_id`.execute(h.db);
    expect(perJob).toHaveLength(200);
    expect(perJob.filter((r) => Number(r.n) !== 1)).toEqual([]);
    expect(new Set(perJob.map((r) => r.job_id))).toEqual(new Set(ids));
    // Not only the effects: no job was even claimed twice (a second claim bumps attempts and fence).
    const { rows: reclaimed } = await sql<{
      id: string;
    }>`SELECT id FROM jobs WHERE kind = ${EFFECT_KIND} AND (attempts <> 1 OR fence <> 1)`.execute(
      h.db,
    );
    expect(reclaimed).toEqual([]);

    const byWorker = new Map<number, number>();
    for (const e of await effects(h.db))
      byWorker.set(e.worker_pid, (byWorker.get(e.worker_pid) ?? 0) + 1);
    expect([...byWorker.keys()].sort()).toEqual([one.child.pid, two.child.pid].sort());
    for (const n of byWorker.values()) expect(n).toBeGreaterThan(0);

    one.child.kill("SIGTERM");
    two.child.kill("SIGTERM");
    expect((await one.exited).code).toBe(0);
    expect((await two.exited).code).toBe(0);
  });
});
