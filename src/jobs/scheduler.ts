// The one durable scheduler: anything that must happen later is a row in `jobs`, claimed by
// whichever kincare process is alive, retried with backoff, fenced so a stale holder cannot
// finish a job someone else has taken over.
import { hostname } from "node:os";
import type { z } from "zod";
import { addMs, type Clock } from "../clock";
import type { Db, Executor } from "../db/database";
import { newId } from "../ids";
import type { Logger } from "../logger";
import {
  claimDueJobs,
  completeJob,
  extendLease,
  failJob,
  insertJob,
  JOB_PRIORITY,
  nextDueAt,
  pruneFinishedJobs,
  releaseOrphanedJobs,
} from "./jobs.repository";
import type { JobRow } from "./jobs.table";

export interface JobContext {
  jobId: string;
  attempt: number;
  /** The fencing token of this run; pass it along to guard side effects. */
  fence: number;
  db: Db;
  clock: Clock;
  logger: Logger;
  /**
   * Marks the job done inside the caller's transaction, so the job's own database effects and
   * its completion commit together. Throws (rolling the transaction back) if the lease was lost.
   */
  completeWithin(trx: Executor): Promise<void>;
}

export interface JobDefinition<P> {
  kind: string;
  payload: z.ZodType<P>;
  maxAttempts?: number;
  /** Delay before retry number `attempt` (1-based); default exponential from 1 s, capped at 5 min. */
  backoffMs?: (attempt: number) => number;
  /** How long a run may take before another process may take the job over. */
  leaseMs?: number;
  handler(ctx: JobContext, payload: P): Promise<void>;
}

export class StaleJobError extends Error {
  constructor(jobId: string) {
    super(`job ${jobId} was taken over by another run`);
    this.name = "StaleJobError";
  }
}

const defaultBackoff = (attempt: number) => Math.min(1000 * 2 ** (attempt - 1), 300_000);
const DEFAULT_LEASE_MS = 60_000;
const DEFAULT_MAX_ATTEMPTS = 10;
/** Slots beyond JOBS_CONCURRENCY that only urgent jobs may take. */
const URGENT_RESERVE = 2;

export interface SchedulerOptions {
  db: Db;
  dialect: "sqlite" | "postgres";
  clock: Clock;
  logger: Logger;
  pollMs: number;
  concurrency: number;
}

export class Scheduler {
  readonly workerId = `${hostname()}:${process.pid}:${newId().slice(-8)}`;
  private readonly definitions = new Map<string, JobDefinition<unknown>>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private polling = false;
  private pollAgain = false;
  private urgentInFlight = 0;

  constructor(private readonly options: SchedulerOptions) {}

  /** The clock this scheduler judges due times by; schedule with it, not with `new Date()`. */
  get clock(): Clock {
    return this.options.clock;
  }

  define<P>(definition: JobDefinition<P>): void {
    if (this.definitions.has(definition.kind))
      throw new Error(`job kind ${definition.kind} is defined twice`);
    this.definitions.set(definition.kind, definition as JobDefinition<unknown>);
  }

  /**
   * Schedules a job. Pass the transaction that makes the change needing the job, so both
   * commit or neither does. Call `nudge()` after commit for a job due now.
   */
  async enqueue<P>(
    db: Executor,
    definition: JobDefinition<P> | string,
    payload: P,
    opts: { runAt?: Date; dedupeKey?: string; priority?: number } = {},
  ): Promise<string> {
    const def = typeof definition === "string" ? this.definitions.get(definition) : definition;
    if (!def) throw new Error(`unknown job kind ${String(definition)}`);
    const now = this.options.clock.now();
    return insertJob(
      db,
      {
        kind: def.kind,
        payload: def.payload.parse(payload),
        runAt: opts.runAt ?? now,
        maxAttempts: def.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        ...(opts.dedupeKey ? { dedupeKey: opts.dedupeKey } : {}),
        ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
      },
      now,
    );
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.options.dialect === "sqlite") {
      const released = await releaseOrphanedJobs(this.options.db, this.options.clock.now());
      if (released > 0)
        this.options.logger.warn({ released }, "resumed jobs left running by a stopped process");
    }
    this.schedule(0);
  }

  /** Polls at once: for a job just committed that is due now. */
  nudge(): void {
    if (!this.running) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.schedule(0);
  }

  /** Stops claiming and waits for the runs in flight. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inFlight.size > 0 || this.polling) {
      await Promise.allSettled([...this.inFlight]);
      if (this.polling) await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Claims and runs due jobs until none is left; for tests and one-off scripts. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const claimed = await this.claim(this.options.concurrency);
      if (claimed.length === 0) break;
      total += claimed.length;
      await Promise.all(claimed.map((job) => this.run(job)));
    }
    return total;
  }

  async prune(olderThanMs: number): Promise<number> {
    return pruneFinishedJobs(this.options.db, addMs(this.options.clock.now(), -olderThanMs));
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), delay);
    this.timer.unref?.();
  }

  private async poll(): Promise<void> {
    if (!this.running || this.polling) return;
    this.polling = true;
    this.pollAgain = false;
    let full = false;
    let delay = this.options.pollMs;
    try {
      const free = this.options.concurrency - this.inFlight.size;
      let claimed = await this.claim(free);
      full = free > 0 && claimed.length === free;
      // Every slot busy: a few more are kept for urgent jobs (an SOS step, its texts), so they
      // never wait behind a backlog of routine ones.
      const urgentFree = URGENT_RESERVE - this.urgentInFlight;
      if (free <= 0 && urgentFree > 0) {
        claimed = await this.claim(urgentFree, JOB_PRIORITY.urgent);
      }
      for (const job of claimed) {
        const urgent = free <= 0;
        if (urgent) this.urgentInFlight += 1;
        const run = this.run(job).finally(() => {
          this.inFlight.delete(run);
          if (urgent) this.urgentInFlight -= 1;
          this.nudge();
        });
        this.inFlight.add(run);
      }
      // Wake when the next job falls due if that is sooner than the next poll (an escalation
      // step due in 300 ms should not wait up to JOBS_POLL_MS); a full house waits for a nudge.
      if (!full && free > 0) {
        const next = await nextDueAt(this.options.db, this.options.clock.now());
        if (next) {
          const wait = Date.parse(next) - this.options.clock.now().getTime();
          delay = Math.max(0, Math.min(delay, wait));
        }
      }
    } catch (error) {
      this.options.logger.error({ err: error }, "claiming jobs failed; will retry");
    } finally {
      this.polling = false;
      this.schedule(full || this.pollAgain ? 0 : delay);
    }
  }

  private claim(limit: number, minPriority?: number): Promise<JobRow[]> {
    return claimDueJobs(this.options.db, {
      ...(minPriority !== undefined ? { minPriority } : {}),
      kinds: [...this.definitions.keys()],
      limit,
      workerId: this.workerId,
      now: this.options.clock.now(),
      leaseMs: Math.max(
        ...[...this.definitions.values()].map((d) => d.leaseMs ?? DEFAULT_LEASE_MS),
      ),
      postgres: this.options.dialect === "postgres",
    });
  }

  private async run(job: JobRow): Promise<void> {
    const { db, clock } = this.options;
    const def = this.definitions.get(job.kind);
    const logger = this.options.logger.child({
      jobId: job.id,
      kind: job.kind,
      attempt: job.attempts,
    });
    if (!def) return;
    let completedInside = false;
    const leaseMs = def.leaseMs ?? DEFAULT_LEASE_MS;
    const heartbeat = setInterval(() => {
      void extendLease(db, job.id, job.fence, addMs(clock.now(), leaseMs)).catch(() => undefined);
    }, leaseMs / 3);
    heartbeat.unref?.();
    try {
      const payload = def.payload.parse(JSON.parse(job.payload));
      await def.handler(
        {
          jobId: job.id,
          attempt: job.attempts,
          fence: job.fence,
          db,
          clock,
          logger,
          completeWithin: async (trx) => {
            if (!(await completeJob(trx, job.id, job.fence, clock.now())))
              throw new StaleJobError(job.id);
            completedInside = true;
          },
        },
        payload,
      );
      if (!completedInside && !(await completeJob(db, job.id, job.fence, clock.now()))) {
        logger.warn("job finished after its lease was taken over; the other run owns it now");
      }
    } catch (error) {
      if (error instanceof StaleJobError) {
        logger.warn("job was taken over by another run; this run's changes were rolled back");
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      const backoff = (def.backoffMs ?? defaultBackoff)(job.attempts);
      const outcome = await failJob(
        db,
        job,
        message,
        addMs(clock.now(), backoff),
        clock.now(),
      ).catch((e) => {
        logger.error(
          { err: e },
          "could not record a job failure; its lease will expire and it will run again",
        );
        return "stale" as const;
      });
      if (outcome === "dead") logger.error({ err: error }, "job failed for the last time");
      else logger.warn({ err: error, retryInMs: backoff }, "job failed; will retry");
    } finally {
      clearInterval(heartbeat);
    }
  }
}
