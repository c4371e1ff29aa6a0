import { type Kysely, type MigrationResultSet, Migrator, PostgresAdapter, sql } from "kysely";
import { migrations } from "../../migrations/index";
import type { Database } from "./schema";

async function migrator(db: Kysely<Database>) {
  // Name the schema on PostgreSQL: Kysely otherwise finds a kysely_migration table in any
  // schema of the database and takes it for ours.
  let migrationTableSchema: string | undefined;
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    migrationTableSchema = rows[0]?.schema;
  }
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    ...(migrationTableSchema ? { migrationTableSchema } : {}),
  });
}

export async function migrateToLatest(
  db: Kysely<Database>,
): Promise<MigrationResultSet["results"]> {
  const { error, results } = await (await migrator(db)).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return results;
}

/** True when every migration kincare knows has been applied. */
export async function migrationsApplied(db: Kysely<Database>): Promise<boolean> {
  const all = await (await migrator(db)).getMigrations();
  return all.every((m) => m.executedAt !== undefined);
}
