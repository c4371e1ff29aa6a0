// Ratings and reviews of providers and workers after verified visits, and providers' promotions.
// Frozen: never import app code.
import type { Kysely } from "kysely";

export async function up(_db: Kysely<any>): Promise<void> {}

export async function down(_db: Kysely<any>): Promise<void> {}
