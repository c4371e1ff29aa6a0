import { iso } from "../clock";
import type { Executor } from "../db/database";
import type { Role, UserRow } from "./accounts.table";

export async function findUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function findUserByLogin(db: Executor, login: { email?: string; phone?: string }) {
  if (login.email)
    return db.selectFrom("users").selectAll().where("email", "=", login.email).executeTakeFirst();
  if (login.phone)
    return db.selectFrom("users").selectAll().where("phone", "=", login.phone).executeTakeFirst();
  return undefined;
}

export async function rolesOf(db: Executor, userId: string): Promise<Role[]> {
  const rows = await db
    .selectFrom("user_roles")
    .select("role")
    .where("user_id", "=", userId)
    .orderBy("role")
    .execute();
  return rows.map((r) => r.role);
}

export async function rolesOfMany(db: Executor, userIds: string[]): Promise<Map<string, Role[]>> {
  const byUser = new Map<string, Role[]>();
  if (userIds.length === 0) return byUser;
  const rows = await db
    .selectFrom("user_roles")
    .select(["user_id", "role"])
    .where("user_id", "in", userIds)
    .orderBy("role")
    .execute();
  for (const r of rows) byUser.set(r.user_id, [...(byUser.get(r.user_id) ?? []), r.role]);
  return byUser;
}

export async function grantRole(
  db: Executor,
  userId: string,
  role: Role,
  by: string | null,
  now: Date,
) {
  await db
    .insertInto("user_roles")
    .values({ user_id: userId, role, granted_at: iso(now), granted_by: by })
    .onConflict((oc) => oc.columns(["user_id", "role"]).doNothing())
    .execute();
}

export async function revokeRole(db: Executor, userId: string, role: Role) {
  await db
    .deleteFrom("user_roles")
    .where("user_id", "=", userId)
    .where("role", "=", role)
    .execute();
}

export async function insertSession(
  db: Executor,
  row: {
    id: string;
    userId: string;
    tokenHash: string;
    now: Date;
    expiresAt: Date;
    userAgent: string | null;
    ip: string | null;
  },
) {
  await db
    .insertInto("sessions")
    .values({
      id: row.id,
      user_id: row.userId,
      token_hash: row.tokenHash,
      created_at: iso(row.now),
      last_seen_at: iso(row.now),
      expires_at: iso(row.expiresAt),
      revoked_at: null,
      user_agent: row.userAgent,
      ip: row.ip,
    })
    .execute();
}

export async function findLiveSessionByTokenHash(db: Executor, tokenHash: string, now: Date) {
  return db
    .selectFrom("sessions")
    .innerJoin("users", "users.id", "sessions.user_id")
    .select([
      "sessions.id as sessionId",
      "sessions.user_id as userId",
      "sessions.last_seen_at as lastSeenAt",
      "users.display_name as displayName",
    ])
    .where("sessions.token_hash", "=", tokenHash)
    .where("sessions.revoked_at", "is", null)
    .where("sessions.expires_at", ">", iso(now))
    .where("users.disabled_at", "is", null)
    .executeTakeFirst();
}

export async function touchSession(db: Executor, sessionId: string, now: Date) {
  await db
    .updateTable("sessions")
    .set({ last_seen_at: iso(now) })
    .where("id", "=", sessionId)
    .execute();
}

export async function listLiveSessions(db: Executor, userId: string, now: Date) {
  return db
    .selectFrom("sessions")
    .select(["id", "created_at", "last_seen_at", "expires_at", "user_agent", "ip"])
    .where("user_id", "=", userId)
    .where("revoked_at", "is", null)
    .where("expires_at", ">", iso(now))
    .orderBy("last_seen_at", "desc")
    .execute();
}

/** Revokes the user's live sessions: one (`only`), all, or all but one (`except`). Returns how many. */
export async function revokeSessions(
  db: Executor,
  userId: string,
  now: Date,
  which: { only?: string; except?: string } = {},
): Promise<number> {
  let q = db
    .updateTable("sessions")
    .set({ revoked_at: iso(now) })
    .where("user_id", "=", userId)
    .where("revoked_at", "is", null);
  if (which.only) q = q.where("id", "=", which.only);
  if (which.except) q = q.where("id", "!=", which.except);
  const result = await q.executeTakeFirst();
  return Number(result.numUpdatedRows);
}
