// Composition root: config -> database -> migrations -> scheduler -> app -> listen; clean shutdown.
import { type ServerType, serve } from "@hono/node-server";
import { ensureOperator } from "./accounts/accounts.service";
import { createApp } from "./app";
import { systemClock } from "./clock";
import { type Config, ConfigError, loadConfig } from "./config";
import { openDatabase } from "./db/database";
import { migrateToLatest } from "./db/migrator";
import { registerCoreJobs } from "./jobs/core-jobs";
import { Scheduler } from "./jobs/scheduler";
import { createLogger, type Logger } from "./logger";

export interface Running {
  url: string;
  stop(): Promise<void>;
}

export async function start(config: Config, logger: Logger): Promise<Running> {
  const { db, dialect, close } = openDatabase(config.database, {
    poolSize: config.DATABASE_POOL_SIZE,
  });
  try {
    const applied = (await migrateToLatest(db)) ?? [];
    for (const m of applied) logger.info({ migration: m.migrationName }, "migration applied");
  } catch (error) {
    await close();
    throw error;
  }

  const clock = systemClock;
  if (config.BOOTSTRAP_OPERATOR_EMAIL && config.BOOTSTRAP_OPERATOR_PASSWORD) {
    const { created } = await ensureOperator(db, clock.now(), {
      email: config.BOOTSTRAP_OPERATOR_EMAIL,
      password: config.BOOTSTRAP_OPERATOR_PASSWORD,
    });
    if (created) logger.info("bootstrap operator account created");
  }

  const scheduler = new Scheduler({
    db,
    dialect,
    clock,
    logger: logger.child({ part: "jobs" }),
    pollMs: config.JOBS_POLL_MS,
    concurrency: config.JOBS_CONCURRENCY,
  });
  await registerCoreJobs(scheduler, db);
  const app = createApp({ config, db, dialect, logger, clock, scheduler });

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () =>
      resolve(s),
    );
    s.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(`PORT ${config.PORT} is already in use: set PORT to a free port`)
          : error,
      ),
    );
  });
  await scheduler.start();
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.PORT;
  const url = `http://${config.HOST === "0.0.0.0" ? "127.0.0.1" : config.HOST}:${port}`;
  logger.info({ url, database: dialect, publicUrl: config.PUBLIC_URL }, "kincare is listening");

  let stopping: Promise<void> | undefined;
  return {
    url,
    stop: () => {
      stopping ??= (async () => {
        logger.info("shutting down: no new requests, finishing the ones in flight");
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        if ("closeIdleConnections" in server) server.closeIdleConnections();
        const timeout = new Promise<void>((resolve) =>
          setTimeout(resolve, config.SHUTDOWN_TIMEOUT_MS).unref(),
        );
        await Promise.race([closed, timeout]);
        if ("closeAllConnections" in server) server.closeAllConnections();
        await scheduler.stop();
        await close();
        logger.info("stopped");
      })();
      return stopping;
    },
  };
}

async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  }
  const logger = createLogger(config.LOG_LEVEL);
  let running: Running;
  try {
    running = await start(config, logger);
  } catch (error) {
    logger.fatal(
      { err: error },
      error instanceof Error ? error.message : "kincare could not start",
    );
    process.exit(1);
  }
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      running.stop().then(
        () => process.exit(0),
        (error) => {
          logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
