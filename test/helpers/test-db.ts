// A fresh database for each test context: a new SQLite file by default, or a new schema on the
// PostgreSQL named by DATABASE_URL, dropped again at the end, so runs never see each other's data.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { type DatabaseTarget, parseDatabaseUrl } from "../../src/config";
import { type Db, openDatabase } from "../../src/db/database";
import { migrateToLatest } from "../../src/db/migrator";

export const usingPostgres = /^postgres(ql)?:\/\//i.test(process.env.DATABASE_URL ?? "");

export interface TestDatabase {
  target: DatabaseTarget;
  /** PostgreSQL only: the schema this test database lives in. */
  schema: string | undefined;
  /** The environment a child kincare process needs to reach this same database. */
  env: Record<string, string>;
  open(): { db: Db; dialect: "sqlite" | "postgres"; close(): Promise<void> };
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (usingPostgres) {
    const url = process.env.DATABASE_URL!;
    // Named for the run: test/global-setup.ts drops them all once every worker is done.
    const run = process.env.KINCARE_TEST_RUN ?? "adhoc";
    const schema = `kc_test_${run}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    const target = parseDatabaseUrl(url);
    const withSchema = new URL(url);
    withSchema.searchParams.set("options", `-c search_path=${schema}`);
    return {
      target,
      schema,
      env: { DATABASE_URL: withSchema.toString() },
      open: () => openDatabase(target, { schema, poolSize: 5 }),
      // Not now: another worker may be migrating, and Kysely's migrator reads every schema of
      // the database; a schema dropped under it fails that worker. The run's end drops them.
      drop: async () => {
        if (process.env.KINCARE_TEST_RUN) return;
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), "kincare-test-"));
  const file = join(dir, "kincare.db");
  return {
    target: { dialect: "sqlite", file },
    schema: undefined,
    env: { DATABASE_URL: file },
    open: () => openDatabase({ dialect: "sqlite", file }),
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function migrated(testDb: TestDatabase) {
  const opened = testDb.open();
  await migrateToLatest(opened.db);
  return opened;
}
