import type { Insertable, Updateable } from "kysely";
import type { Executor } from "../db/database";
import type { ResidentRow, ResidentStatus, ResidentsTable } from "./residents.table";

export async function insertResident(db: Executor, row: Insertable<ResidentsTable>) {
  await db.insertInto("residents").values(row).execute();
}

export async function updateResident(db: Executor, id: string, patch: Updateable<ResidentsTable>) {
  await db.updateTable("residents").set(patch).where("id", "=", id).execute();
}

export async function findResident(db: Executor, id: string): Promise<ResidentRow | undefined> {
  return db.selectFrom("residents").selectAll().where("id", "=", id).executeTakeFirst();
}

export interface ResidentFilter {
  /** Limit to residents this user is related to (family circle or own account); undefined = all. */
  visibleTo?: string;
  status?: ResidentStatus;
  pending?: boolean;
  q?: string;
  limit: number;
  offset: number;
}

export async function listResidents(db: Executor, f: ResidentFilter) {
  let q = db.selectFrom("residents").selectAll("residents");
  if (f.visibleTo !== undefined) {
    const userId = f.visibleTo;
    q = q.where((eb) =>
      eb.or([
        eb("residents.user_id", "=", userId),
        eb(
          "residents.id",
          "in",
          eb.selectFrom("circle_members").select("resident_id").where("user_id", "=", userId),
        ),
      ]),
    );
  }
  if (f.status) q = q.where("status", "=", f.status);
  if (f.pending !== undefined) q = q.where("confirmed_at", f.pending ? "is" : "is not", null);
  if (f.q) {
    const like = `%${f.q.toLowerCase()}%`;
    q = q.where((eb) =>
      eb.or([
        eb(eb.fn("lower", ["full_name"]), "like", like),
        eb(eb.fn("lower", ["preferred_name"]), "like", like),
      ]),
    );
  }
  return q.orderBy("full_name").orderBy("id").limit(f.limit).offset(f.offset).execute();
}

export async function circleLevelsFor(db: Executor, userId: string, residentIds: string[]) {
  if (residentIds.length === 0) return new Map<string, "primary" | "member">();
  const rows = await db
    .selectFrom("circle_members")
    .select(["resident_id", "level"])
    .where("user_id", "=", userId)
    .where("resident_id", "in", residentIds)
    .execute();
  return new Map(rows.map((r) => [r.resident_id, r.level]));
}
