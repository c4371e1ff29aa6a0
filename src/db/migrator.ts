import { type Kysely, type MigrationResultSet, Migrator } from "kysely";
import { migrations } from "../../migrations/index";

function migrator(db: Kysely<any>) {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet["results"]> {
  const { error, results } = await migrator(db).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return results;
}

/** True when every migration kincare knows has been applied. */
export async function migrationsApplied(db: Kysely<any>): Promise<boolean> {
  const all = await migrator(db).getMigrations();
  return all.every((m) => m.executedAt !== undefined);
}
