// A whole kincare app on a fresh database, reached through app.request() or over real HTTP.
import type { Agent } from "node:https";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { type ServerType, serve } from "@hono/node-server";
import type { createApp } from "../../src/app";
import type { Clock } from "../../src/clock";
import { type Config, loadConfig } from "../../src/config";
import type { Db } from "../../src/db/database";
import type { Scheduler } from "../../src/jobs/scheduler";
import { createLogger } from "../../src/logger";
import { createSystem, type System } from "../../src/system";
import { FakeClock } from "./clock";
import { freePort } from "./processes";
import { createTestDatabase, migrated, type TestDatabase } from "./test-db";

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RequestOptions {
  body?: unknown;
  /** A raw body string, sent as is (for malformed JSON). */
  raw?: string;
  token?: string;
  headers?: Record<string, string>;
}

export interface TestApp {
  app: ReturnType<typeof createApp>;
  db: Db;
  dialect: "sqlite" | "postgres";
  clock: FakeClock;
  scheduler: Scheduler;
  config: Config;
  /** The whole composed system: ingest, device link, broker (once started with `mqtt`). */
  system: System;
  /** The embedded broker's address, when started with `mqtt: true`. */
  mqttUrl: string | undefined;
  testDb: TestDatabase;
  /** Every log line the app wrote, as parsed JSON. */
  logs: Record<string, unknown>[];
  /** Raw log text, for checking that no secret ever reached it. */
  logText(): string;
  request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<ApiResponse<T>>;
  /** Starts a real HTTP server on a free loopback port. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  clock?: Clock;
  env?: Record<string, string>;
  /** Reuse a database (to restart the app on the same data). */
  testDb?: TestDatabase;
  /** Start the embedded MQTT broker on a free port (and the device ingest behind it). */
  mqtt?: boolean;
  /** Run the job scheduler's poll loop (otherwise tests run due jobs with scheduler.drain()). */
  jobs?: boolean;
  /** The HTTPS agent web push goes through (trusting a local fake push service). */
  pushAgent?: Agent;
  /**
   * Serve over real HTTP on a free port known before the app is built, with PUBLIC_URL set to it
   * (webhook signatures cover the public URL, so callbacks must reach exactly that address).
   */
  serve?: boolean;
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const httpPort = options.serve ? await freePort() : 0;
  const testDb = options.testDb ?? (await createTestDatabase());
  const database = await migrated(testDb);
  const { db, dialect } = database;
  const clock = (options.clock as FakeClock | undefined) ?? new FakeClock();
  const config = loadConfig({
    ...testDb.env,
    NODE_ENV: "test",
    LOG_LEVEL: "info",
    PUBLIC_URL: httpPort ? `http://127.0.0.1:${httpPort}` : "http://kincare.test",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: "0",
    MQTT_TOPIC_PREFIX: `kctest${process.pid}x${Math.random().toString(36).slice(2, 8)}/v1`,
    // With MQTT_URL set (CI's second run), devices go through that broker (Mosquitto).
    ...(process.env.MQTT_URL ? { MQTT_URL: process.env.MQTT_URL } : {}),
    MQTT_CLIENT_ID: `kctest-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    ...options.env,
  });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  const logger = createLogger(config.LOG_LEVEL, sink);
  const system = await createSystem(config, {
    clock,
    logger,
    database,
    pollMs: 20,
    ...(options.pushAgent ? { pushAgent: options.pushAgent } : {}),
  });
  const { app, scheduler } = system;
  await system.start({ devices: options.mqtt ?? false, jobs: options.jobs ?? false });
  const mqttUrl = system.broker ? `mqtt://127.0.0.1:${system.broker.port}` : config.MQTT_URL;
  let server: ServerType | undefined;
  const listen = (port: number) =>
    new Promise<string>((resolve) => {
      server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, (info: AddressInfo) =>
        resolve(`http://127.0.0.1:${info.port}`),
      );
    });
  if (httpPort) await listen(httpPort);

  const request = async <T>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<ApiResponse<T>> => {
    const headers: Record<string, string> = { ...opts.headers };
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (
      body !== undefined &&
      !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")
    ) {
      headers["content-type"] = "application/json";
    }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const res = await app.request(path, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    if (res.headers.get("content-type")?.includes("json") && text) parsed = JSON.parse(text);
    return { status: res.status, body: parsed as T, headers: res.headers };
  };

  return {
    app,
    db,
    dialect,
    clock,
    scheduler,
    system,
    mqttUrl,
    config,
    testDb,
    // A getter, not a Proxy over an empty array: filter/some/find consult `has`, which a
    // get-only Proxy answers from its (empty) target, so they saw no lines at all.
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join("\n"),
    request,
    listen: () => (server ? Promise.resolve(config.PUBLIC_URL) : listen(0)),
    close: async () => {
      if (server) await new Promise((r) => server!.close(() => r(undefined)));
      await system.stop({ endMqttSessions: true });
      if (!options.testDb) await testDb.drop();
    },
  };
}
