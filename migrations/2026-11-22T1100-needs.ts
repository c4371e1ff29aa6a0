// Needs a family posts when the catalog lacks what they want, and providers' offers on them.
// Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(_db: Kysely<any>): Promise<void> {}

export async function down(_db: Kysely<any>): Promise<void> {}
