import type { Insertable, Updateable } from "kysely";
import type { Executor } from "../db/database";
import type { ProviderRow, ProviderStatus, ProvidersTable } from "./providers.table";

/** Localities are matched trimmed and without regard to case, on both databases alike. */
export function localityKey(locality: string): string {
  return locality.trim().toLocaleLowerCase("en-US");
}

export async function insertProvider(db: Executor, row: Insertable<ProvidersTable>) {
  await db.insertInto("providers").values(row).execute();
}

export async function updateProviderRow(
  db: Executor,
  id: string,
  patch: Updateable<ProvidersTable>,
) {
  await db.updateTable("providers").set(patch).where("id", "=", id).execute();
}

export async function findProvider(db: Executor, id: string): Promise<ProviderRow | undefined> {
  return db.selectFrom("providers").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function findProviderByLicence(db: Executor, licenceNumber: string) {
  return db
    .selectFrom("providers")
    .select("id")
    .where("licence_number", "=", licenceNumber)
    .executeTakeFirst();
}

export async function replaceLocalities(db: Executor, providerId: string, localities: string[]) {
  await db.deleteFrom("provider_localities").where("provider_id", "=", providerId).execute();
  const byKey = new Map(localities.map((l) => [localityKey(l), l.trim()]));
  if (byKey.size === 0) return;
  await db
    .insertInto("provider_localities")
    .values(
      [...byKey].map(([key, locality]) => ({
        locality_key: key,
        provider_id: providerId,
        locality,
      })),
    )
    .execute();
}

export async function localitiesOf(db: Executor, providerIds: string[]) {
  const map = new Map<string, string[]>();
  if (providerIds.length === 0) return map;
  const rows = await db
    .selectFrom("provider_localities")
    .select(["provider_id", "locality"])
    .where("provider_id", "in", providerIds)
    .orderBy("locality")
    .execute();
  for (const r of rows) map.set(r.provider_id, [...(map.get(r.provider_id) ?? []), r.locality]);
  return map;
}

export async function isProviderAdmin(db: Executor, providerId: string, userId: string) {
  const row = await db
    .selectFrom("provider_admins")
    .select("user_id")
    .where("provider_id", "=", providerId)
    .where("user_id", "=", userId)
    .executeTakeFirst();
  return row !== undefined;
}

export async function listProvidersOf(db: Executor, userId: string) {
  return db
    .selectFrom("providers")
    .selectAll("providers")
    .innerJoin("provider_admins", "provider_admins.provider_id", "providers.id")
    .where("provider_admins.user_id", "=", userId)
    .orderBy("providers.display_name")
    .orderBy("providers.id")
    .execute();
}

export async function listProviderRows(
  db: Executor,
  f: { status?: ProviderStatus | undefined; limit: number; offset: number },
) {
  let q = db.selectFrom("providers").selectAll();
  if (f.status) q = q.where("status", "=", f.status);
  return q.orderBy("created_at").orderBy("id").limit(f.limit).offset(f.offset).execute();
}
