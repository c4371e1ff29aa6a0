// A stand-alone job worker process for the scheduler tests: opens the test database named by the
// environment, runs the `test.effect` job kind on the real clock, prints "ready" once polling,
// and stops cleanly on SIGTERM. SIGKILL it to simulate a crash mid-job.
//
//   DATABASE_URL    the test database (a SQLite file, or PostgreSQL with search_path set)
//   DB_SCHEMA       PostgreSQL only: the test schema
//   JOB_HANG=1      jobs whose payload says hang: true never finish in this process
//   JOB_WORK_MS     how long each run takes (default 0)
//   JOB_LEASE_MS    the lease (default 1500), so a crashed worker's job is taken over quickly
import { pino } from "pino";
import { systemClock } from "../../src/clock";
import { parseDatabaseUrl } from "../../src/config";
import { openDatabase } from "../../src/db/database";
import { Scheduler } from "../../src/jobs/scheduler";
import { createLogger } from "../../src/logger";
import { effectJob } from "./test-jobs";

const target = parseDatabaseUrl(process.env.DATABASE_URL ?? "");
const { db, dialect, close } = openDatabase(target, {
  poolSize: 5,
  ...(process.env.DB_SCHEMA ? { schema: process.env.DB_SCHEMA } : {}),
});
const logger = createLogger("warn", pino.destination(2));
const scheduler = new Scheduler({
  db,
  dialect,
  clock: systemClock,
  logger,
  pollMs: 20,
  concurrency: 4,
});
scheduler.define(
  effectJob({
    hang: process.env.JOB_HANG === "1",
    workMs: Number(process.env.JOB_WORK_MS ?? 0),
    leaseMs: Number(process.env.JOB_LEASE_MS ?? 1500),
  }),
);
await scheduler.start();
// The scheduler's timers do not hold the process open (kincare's HTTP server does); this does.
const keepAlive = setInterval(() => undefined, 60_000);
// `on`, not `once`: a second SIGTERM while stopping must not fall back to the default (death).
let stopping = false;
process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  clearInterval(keepAlive);
  void scheduler
    .stop()
    .then(close)
    .then(() => {
      process.stdout.write("stopped\n");
      process.exit(0);
    });
});
// Only once the handler is in place: the parent may send SIGTERM the moment it reads this.
process.stdout.write(`ready ${process.pid}\n`);
