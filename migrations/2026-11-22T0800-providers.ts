// Providers, their workers and the services they offer (the catalog, with full-text search).
// Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(_db: Kysely<any>): Promise<void> {}

export async function down(_db: Kysely<any>): Promise<void> {}
