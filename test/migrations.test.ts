// The migrations build one schema, the same on SQLite and PostgreSQL: both runs of the suite
// compare the migrated database with the one committed snapshot, test/schema.snapshot.json.
// After adding a migration, regenerate it on SQLite with UPDATE_SCHEMA_SNAPSHOT=1 (then
// `npm run format`), read the diff, and let the PostgreSQL run confirm it.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { sql } from "kysely";
import { afterEach, describe, expect, test } from "vitest";
import { migrations } from "../migrations/index";
import { createApp } from "../src/app";
import { loadConfig } from "../src/config";
import { migrateToLatest, migrationsApplied } from "../src/db/migrator";
import type { DeviceLink } from "../src/devices/link";
import { Scheduler } from "../src/jobs/scheduler";
import { createLogger } from "../src/logger";
import { outboxChannel } from "../src/notifications/channels";
import { FakeClock } from "./helpers/clock";
import { repoRoot } from "./helpers/processes";
import { describeSchema, type SchemaShape, typeClass } from "./helpers/schema-snapshot";
import { createTestDatabase, migrated, type TestDatabase, usingPostgres } from "./helpers/test-db";

const snapshotFile = join(repoRoot, "test", "schema.snapshot.json");
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function freshDatabase(): Promise<TestDatabase> {
  const testDb = await createTestDatabase();
  cleanups.push(() => testDb.drop());
  return testDb;
}

async function migratedDatabase() {
  const testDb = await freshDatabase();
  const opened = await migrated(testDb);
  cleanups.push(opened.close);
  return { testDb, ...opened };
}

describe("migrations", () => {
  test(`build the committed schema snapshot on ${usingPostgres ? "PostgreSQL" : "SQLite"}`, async () => {
    const { db, dialect } = await migratedDatabase();
    const actual = await describeSchema(db, dialect);
    if (process.env.UPDATE_SCHEMA_SNAPSHOT === "1" && dialect === "sqlite") {
      writeFileSync(snapshotFile, `${JSON.stringify(actual, null, 2)}\n`);
    }
    const committed = JSON.parse(readFileSync(snapshotFile, "utf8")) as SchemaShape;
    expect(actual).toEqual(committed);
  });

  test("the snapshot holds every table and names nothing dialect-specific", () => {
    const committed = JSON.parse(readFileSync(snapshotFile, "utf8")) as SchemaShape;
    expect(Object.keys(committed)).toEqual(
      expect.arrayContaining(["users", "sessions", "jobs", "audit_log", "residents"]),
    );
    const text = JSON.stringify(committed);
    expect(text).not.toMatch(/other:|unparsed|sqlite_autoindex|_pkey|kysely_migration/);
    // The jobs table is what the scheduler's claims and dedupe rely on.
    expect(committed.jobs!.indexes).toEqual(
      expect.arrayContaining([
        { name: "jobs_dedupe_idx", columns: ["dedupe_key"], unique: true, partial: true },
      ]),
    );
    // The audit log refuses updates and deletes in the database itself, on both.
    expect(committed.audit_log!.triggers).toEqual(["BEFORE DELETE", "BEFORE UPDATE"]);
  });

  test("migrating twice is a no-op", async () => {
    const { db, dialect } = await migratedDatabase();
    const before = await describeSchema(db, dialect);
    await db
      .insertInto("settings")
      .values({
        key: "auth.lockout_minutes",
        value: "30",
        updated_at: new Date().toISOString(),
        updated_by: null,
      })
      .execute();

    expect(await migrateToLatest(db)).toEqual([]);
    expect(await describeSchema(db, dialect)).toEqual(before);
    const settings = await db.selectFrom("settings").select(["key", "value"]).execute();
    expect(settings).toEqual([{ key: "auth.lockout_minutes", value: "30" }]);
    const { rows } = await sql<{
      name: string;
    }>`SELECT name FROM kysely_migration ORDER BY name`.execute(db);
    expect(rows.map((r) => r.name)).toEqual(Object.keys(migrations).sort());
  });

  test("every migration file is listed, in date order, and none imports app code", () => {
    const dir = join(repoRoot, "migrations");
    const files = readdirSync(dir)
      .filter((f) => f.endsWith(".ts") && f !== "index.ts")
      .map((f) => f.replace(/\.ts$/, ""));
    expect(Object.keys(migrations).sort()).toEqual(files.sort());
    for (const name of files) {
      expect(name).toMatch(/^\d{4}-\d{2}-\d{2}T\d{4}-[a-z0-9-]+$/);
      const source = readFileSync(join(dir, `${name}.ts`), "utf8");
      const imports = [...source.matchAll(/from\s+["']([^"']+)["']/g)].map((m) => m[1]);
      expect(
        imports.filter((i) => i !== "kysely"),
        name,
      ).toEqual([]);
    }
  });

  test("the type classes are recognised for both dialects' spellings", () => {
    expect(["TEXT", "text", "varchar"].map(typeClass)).toEqual(["text", "text", "text"]);
    expect(["INTEGER", "int4", "int8", "bigint"].map(typeClass)).toEqual(Array(4).fill("integer"));
    expect(["double precision", "float8", "REAL"].map(typeClass)).toEqual(Array(3).fill("real"));
    expect(typeClass("jsonb")).toBe("other:jsonb");
  });
});

describe("readiness", () => {
  function appOn(opened: ReturnType<TestDatabase["open"]>, testDb: TestDatabase) {
    const config = loadConfig({ ...testDb.env, NODE_ENV: "test", LOG_LEVEL: "silent" });
    const logger = createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() }));
    const clock = new FakeClock();
    const scheduler = new Scheduler({
      db: opened.db,
      dialect: opened.dialect,
      clock,
      logger,
      pollMs: 50,
      concurrency: 1,
    });
    // Built without the device side on purpose: an unmigrated database has no device keys yet,
    // and readiness never reaches devices.
    const devices: DeviceLink = {
      hasher: { hash: () => "", verify: () => false },
      endpoint: { url: "", topicPrefix: "" },
      deviceChanged: () => undefined,
      residentChanged: () => undefined,
      sendCommand: () => Promise.reject(new Error("no devices in this test")),
    };
    return createApp({
      config,
      db: opened.db,
      dialect: opened.dialect,
      logger,
      clock,
      scheduler,
      devices,
      // Nothing here sends: readiness never reaches alerting.
      alerting: {
        sms: outboxChannel,
        push: { publicKey: "", send: () => Promise.reject(new Error("no push in this test")) },
        links: { url: () => "", verify: () => null },
        ack: { sendDeviceAck: () => undefined, nudge: () => undefined },
        streams: new AbortController().signal,
      },
    });
  }

  test("/readyz is not_ready before migrations, ready after, and not_ready once the database is gone", async () => {
    const testDb = await freshDatabase();
    const opened = testDb.open();
    let closed = false;
    cleanups.push(async () => {
      if (!closed) await opened.close();
    });
    const app = appOn(opened, testDb);

    expect(await migrationsApplied(opened.db)).toBe(false);
    const before = await app.request("/readyz");
    expect(before.status).toBe(503);
    expect(await before.json()).toEqual({
      status: "not_ready",
      reason: "migrations are not applied",
    });
    // Alive all the same: a load balancer must not kill a process that is still migrating.
    expect((await app.request("/healthz")).status).toBe(200);

    await migrateToLatest(opened.db);
    const after = await app.request("/readyz");
    expect(after.status).toBe(200);
    expect(await after.json()).toEqual({ status: "ready", database: opened.dialect });

    await opened.close();
    closed = true;
    const gone = await app.request("/readyz");
    expect(gone.status).toBe(503);
    expect(await gone.json()).toEqual({
      status: "not_ready",
      reason: "the database is not reachable",
    });
  });

  test.skipIf(!usingPostgres)(
    "on PostgreSQL, another schema's applied migrations do not make a fresh schema ready",
    async () => {
      // A migrated neighbour in the same database (as every concurrent test run has).
      await migratedDatabase();
      const testDb = await freshDatabase();
      const opened = testDb.open();
      cleanups.push(opened.close);
      expect(await migrationsApplied(opened.db)).toBe(false);
      expect((await appOn(opened, testDb).request("/readyz")).status).toBe(503);
    },
  );
});
