// The Kysely handle for SQLite (embedded default) or PostgreSQL (scale-out), chosen by DATABASE_URL.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect, type Transaction } from "kysely";
import pg from "pg";
import type { DatabaseTarget } from "../config";
import type { Database } from "./schema";

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;
/** Either the database or a transaction: every repository function takes one as its first argument. */
export type Executor = Kysely<Database>;

// int8 (count(*), bigint money) comes back as a JS number, as on SQLite; values stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

export interface OpenDatabaseOptions {
  poolSize?: number;
  /** PostgreSQL only: the schema used for every unqualified name (tests run each in their own). */
  schema?: string;
}

export interface OpenedDatabase {
  db: Db;
  dialect: DatabaseTarget["dialect"];
  close(): Promise<void>;
}

export function openDatabase(
  target: DatabaseTarget,
  options: OpenDatabaseOptions = {},
): OpenedDatabase {
  if (target.dialect === "postgres") {
    const pool = new pg.Pool({
      connectionString: target.url,
      max: options.poolSize ?? 10,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, dialect: "postgres", close: () => db.destroy() };
  }
  if (target.file !== ":memory:") mkdirSync(dirname(target.file), { recursive: true });
  const sqlite = new SQLite(target.file);
  sqlite.pragma("journal_mode = WAL");
  // FULL: every commit's WAL frames are on disk before it returns, so a device told PUBACK keeps
  // its message through a power cut, not only through a process kill (what NORMAL promises).
  // Ingest commits in groups, so the sync costs a fraction of a millisecond per thousand messages.
  sqlite.pragma("synchronous = FULL");
  // A checkpoint every 1,000 pages (the default) came after nearly every ingest commit, each
  // dirtying ~1,900 pages; at 10,000 (~40 MB of WAL) the hot pages are copied once per
  // several commits. Nothing is less durable: the WAL is synced either way.
  sqlite.pragma("wal_autocheckpoint = 10000");
  // 32 MiB of page cache instead of 2: readings' index pages are spread over every device and
  // resident, and with the default most inserts read their page back from the OS.
  sqlite.pragma("cache_size = -32768");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  sqliteHandles.set(db, sqlite);
  return { db, dialect: "sqlite", close: () => db.destroy() };
}

export type SqliteConnection = SQLite.Database;
const sqliteHandles = new WeakMap<Db, SqliteConnection>();

/**
 * The better-sqlite3 connection under a Kysely handle from openDatabase, for a hot path that
 * needs prepared statements (Kysely compiles each query anew). Use it only inside a Kysely
 * transaction or connection on the same handle: that holds the single connection, so nothing else
 * runs a statement in between.
 */
export function sqliteConnection(db: Db): SqliteConnection | undefined {
  return sqliteHandles.get(db);
}

/** A unique or primary-key constraint refused the write (PostgreSQL 23505, SQLite's constraint codes). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === "23505" ||
    code === "SQLITE_CONSTRAINT_PRIMARYKEY" ||
    code === "SQLITE_CONSTRAINT_UNIQUE"
  );
}
