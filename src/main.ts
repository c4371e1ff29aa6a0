// Composition root: config -> system (database, migrations, jobs, devices, app) -> listen; clean shutdown.
import { type ServerType, serve } from "@hono/node-server";
import { systemClock } from "./clock";
import { type Config, ConfigError, loadConfig } from "./config";
import { createLogger, type Logger } from "./logger";

export interface Running {
  url: string;
  stop(): Promise<void>;
}

export async function start(config: Config, logger: Logger): Promise<Running> {
  // Loaded only once the configuration is known to be good, so a bad value is reported at once.
  const { createSystem } = await import("./system");
  const system = await createSystem(config, { clock: systemClock, logger });
  const { app, dialect } = system;
  try {
    await system.start();
  } catch (error) {
    await system.stop();
    throw error;
  }

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
        system.endStreams();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        if ("closeIdleConnections" in server) server.closeIdleConnections();
        const timeout = new Promise<void>((resolve) =>
          setTimeout(resolve, config.SHUTDOWN_TIMEOUT_MS).unref(),
        );
        await Promise.race([closed, timeout]);
        if ("closeAllConnections" in server) server.closeAllConnections();
        await system.stop();
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
  // Signals are handled from the very start: a SIGTERM that arrives while starting (an
  // orchestrator's quick restart) waits for the start, then stops cleanly.
  let started: Promise<Running | undefined> = Promise.resolve(undefined);
  let stopping = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      started
        .then((running) => running?.stop())
        .then(
          () => process.exit(0),
          (error) => {
            logger.error({ err: error }, "shutdown failed");
            process.exit(1);
          },
        );
    });
  }
  started = start(config, logger).catch((error) => {
    logger.fatal(
      { err: error },
      error instanceof Error ? error.message : "kincare could not start",
    );
    process.exit(1);
  });
  await started;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
