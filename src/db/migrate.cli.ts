// npm run db:migrate: applies pending migrations to the database named by DATABASE_URL.
import { ConfigError, loadConfig } from "../config";
import { openDatabase } from "./database";
import { migrateToLatest } from "./migrator";

try {
  const config = loadConfig();
  const { db, close } = openDatabase(config.database);
  const results = (await migrateToLatest(db)) ?? [];
  for (const r of results)
    console.log(`${r.status === "Success" ? "applied" : r.status}: ${r.migrationName}`);
  if (results.length === 0) console.log("the database is up to date");
  await close();
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exitCode = 1;
}
