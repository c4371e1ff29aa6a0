// Accounts, sessions, login throttling and password resets.

import { recordAudit } from "../audit/audit.service";
import { addMs, iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError, notFound } from "../errors";
import { newId, newToken } from "../ids";
import type { RequestCtx } from "../request-ctx";
import { getSettings } from "../settings/settings.service";
import {
  findLiveSessionByTokenHash,
  findUserById,
  findUserByLogin,
  grantRole,
  insertSession,
  listLiveSessions,
  revokeSessions,
  rolesOf,
  touchSession,
} from "./accounts.repository";
import type { Role, UserRow } from "./accounts.table";
import { hashPassword, verifyAgainstNothing, verifyPassword } from "./passwords";
import { hashToken } from "./tokens";

export interface NewUser {
  displayName: string;
  email?: string | undefined;
  phone?: string | undefined;
  password: string;
  language?: string | undefined;
  timeZone?: string | undefined;
}

export function publicUser(row: UserRow, roles: Role[]) {
  return {
    id: row.id,
    displayName: row.display_name,
    email: row.email,
    phone: row.phone,
    roles,
    language: row.language,
    timeZone: row.time_zone,
    quietHours:
      row.quiet_hours_start && row.quiet_hours_end
        ? { start: row.quiet_hours_start, end: row.quiet_hours_end }
        : null,
    channels: JSON.parse(row.channels) as string[],
    disabledAt: row.disabled_at,
    createdAt: row.created_at,
  };
}
export type PublicUser = ReturnType<typeof publicUser>;

/** Creates an account with its roles. Email and phone are unique across accounts. */
export async function createUser(
  db: Executor,
  ctx: RequestCtx,
  input: NewUser,
  roles: Role[],
): Promise<UserRow> {
  if (!input.email && !input.phone) {
    throw new AppError("validation_failed", "give an email address or a phone number", {
      issues: [{ path: "email", message: "an email address or a phone number is required" }],
    });
  }
  const clash = await db
    .selectFrom("users")
    .select(["email", "phone"])
    .where((eb) =>
      eb.or([
        ...(input.email ? [eb("email", "=", input.email)] : []),
        ...(input.phone ? [eb("phone", "=", input.phone)] : []),
      ]),
    )
    .executeTakeFirst();
  if (clash) {
    const field = input.email && clash.email === input.email ? "email" : "phone";
    throw new AppError("already_exists", `an account with this ${field} already exists`, { field });
  }
  const now = iso(ctx.now);
  const row: UserRow = {
    id: newId(),
    email: input.email ?? null,
    phone: input.phone ?? null,
    display_name: input.displayName,
    password_hash: await hashPassword(input.password),
    language: input.language ?? "en",
    time_zone: input.timeZone ?? "UTC",
    quiet_hours_start: null,
    quiet_hours_end: null,
    channels: JSON.stringify(["push", "sms"]),
    failed_logins: 0,
    next_login_at: null,
    locked_until: null,
    disabled_at: null,
    created_at: now,
    updated_at: now,
  };
  await db.insertInto("users").values(row).execute();
  for (const role of roles) await grantRole(db, row.id, role, ctx.actor?.userId ?? null, ctx.now);
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor?.userId ?? row.id,
      action: "user.create",
      entityType: "user",
      entityId: row.id,
      requestId: ctx.requestId,
      details: { roles },
    },
    ctx.now,
  );
  return row;
}

export interface SessionMeta {
  userAgent: string | null;
  ip: string | null;
}

export interface StartedSession {
  token: string;
  sessionId: string;
  expiresAt: string;
}

export async function startSession(
  db: Executor,
  userId: string,
  now: Date,
  meta: SessionMeta,
): Promise<StartedSession> {
  const settings = await getSettings(db);
  const token = newToken();
  const id = newId();
  const expiresAt = addMs(now, settings["auth.session_ttl_hours"] * 3_600_000);
  await insertSession(db, {
    id,
    userId,
    tokenHash: hashToken(token),
    now,
    expiresAt,
    userAgent: meta.userAgent?.slice(0, 300) ?? null,
    ip: meta.ip,
  });
  return { token, sessionId: id, expiresAt: iso(expiresAt) };
}

export async function signUp(db: Db, ctx: RequestCtx, input: NewUser, meta: SessionMeta) {
  return db.transaction().execute(async (trx) => {
    const user = await createUser(trx, ctx, input, ["family"]);
    const session = await startSession(trx, user.id, ctx.now, meta);
    return { user: publicUser(user, ["family"]), session };
  });
}

function retryAfterSeconds(until: string, now: Date): number {
  return Math.max(1, Math.ceil((Date.parse(until) - now.getTime()) / 1000));
}

/**
 * Checks a password. Failures are counted in the database (so every process sees them): after
 * a few, each next try must wait longer; after more, the account is locked for a while.
 */
export async function login(
  db: Db,
  ctx: RequestCtx,
  credentials: { email?: string; phone?: string; password: string },
  meta: SessionMeta,
) {
  const now = ctx.now;
  const user = await findUserByLogin(db, credentials);
  if (!user || user.disabled_at) {
    await verifyAgainstNothing(credentials.password);
    throw new AppError("invalid_credentials", "the login or the password is wrong");
  }
  if (user.locked_until && user.locked_until > iso(now)) {
    const wait = retryAfterSeconds(user.locked_until, now);
    throw new AppError(
      "account_locked",
      `too many failed logins: this account is locked for ${Math.ceil(wait / 60)} more minute(s), or until an operator resets the password`,
      { retryAfterSeconds: wait },
      { "Retry-After": String(wait) },
    );
  }
  if (user.next_login_at && user.next_login_at > iso(now)) {
    const wait = retryAfterSeconds(user.next_login_at, now);
    throw new AppError(
      "too_many_attempts",
      `too many failed logins: wait ${wait} second(s) before trying again`,
      { retryAfterSeconds: wait },
      { "Retry-After": String(wait) },
    );
  }
  if (!(await verifyPassword(credentials.password, user.password_hash))) {
    await recordFailedLogin(db, user.id, ctx);
    throw new AppError("invalid_credentials", "the login or the password is wrong");
  }
  return db.transaction().execute(async (trx) => {
    await trx
      .updateTable("users")
      .set({ failed_logins: 0, next_login_at: null, locked_until: null })
      .where("id", "=", user.id)
      .execute();
    const session = await startSession(trx, user.id, now, meta);
    await recordAudit(
      trx,
      {
        actorUserId: user.id,
        action: "session.login",
        entityType: "session",
        entityId: session.sessionId,
        requestId: ctx.requestId,
      },
      now,
    );
    return { user: publicUser(user, await rolesOf(trx, user.id)), session };
  });
}

async function recordFailedLogin(db: Db, userId: string, ctx: RequestCtx) {
  const settings = await getSettings(db);
  await db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable("users")
      .set((eb) => ({ failed_logins: eb("failed_logins", "+", 1) }))
      .where("id", "=", userId)
      .returning("failed_logins")
      .executeTakeFirstOrThrow();
    const failures = row.failed_logins;
    if (failures >= settings["auth.lockout_after"]) {
      const until = addMs(ctx.now, settings["auth.lockout_minutes"] * 60_000);
      await trx
        .updateTable("users")
        .set({ locked_until: iso(until), next_login_at: null, failed_logins: 0 })
        .where("id", "=", userId)
        .execute();
      await recordAudit(
        trx,
        {
          actorUserId: null,
          action: "user.locked",
          entityType: "user",
          entityId: userId,
          requestId: ctx.requestId,
          details: { failures },
        },
        ctx.now,
      );
    } else if (failures >= settings["auth.login_slowdown_after"]) {
      const delayMs = Math.min(
        2 ** (failures - settings["auth.login_slowdown_after"]) * 1000,
        60_000,
      );
      await trx
        .updateTable("users")
        .set({ next_login_at: iso(addMs(ctx.now, delayMs)) })
        .where("id", "=", userId)
        .execute();
    }
  });
}

export interface AuthenticatedSession {
  sessionId: string;
  userId: string;
  displayName: string;
  roles: Role[];
}

export async function authenticateToken(
  db: Executor,
  token: string,
  now: Date,
): Promise<AuthenticatedSession | null> {
  const found = await findLiveSessionByTokenHash(db, hashToken(token), now);
  if (!found) return null;
  // Writing last_seen_at on every request would turn every read into a write; once a minute is enough.
  if (now.getTime() - Date.parse(found.lastSeenAt) > 60_000)
    await touchSession(db, found.sessionId, now);
  return {
    sessionId: found.sessionId,
    userId: found.userId,
    displayName: found.displayName,
    roles: await rolesOf(db, found.userId),
  };
}

export async function getUser(db: Executor, userId: string): Promise<PublicUser> {
  const row = await findUserById(db, userId);
  if (!row) throw notFound("the user");
  return publicUser(row, await rolesOf(db, userId));
}

export function presentSession(
  s: Awaited<ReturnType<typeof listLiveSessions>>[number],
  currentId?: string,
) {
  return {
    id: s.id,
    createdAt: s.created_at,
    lastSeenAt: s.last_seen_at,
    expiresAt: s.expires_at,
    userAgent: s.user_agent,
    ip: s.ip,
    current: s.id === currentId,
  };
}

export async function listSessions(db: Executor, userId: string, now: Date, currentId?: string) {
  return (await listLiveSessions(db, userId, now)).map((s) => presentSession(s, currentId));
}

export async function revokeSession(
  db: Executor,
  ctx: RequestCtx,
  userId: string,
  sessionId: string,
) {
  const count = await revokeSessions(db, userId, ctx.now, { only: sessionId });
  if (count === 0) throw notFound("the session");
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor?.userId ?? null,
      action: "session.revoke",
      entityType: "session",
      entityId: sessionId,
      requestId: ctx.requestId,
      details: { userId },
    },
    ctx.now,
  );
}

export async function changePassword(
  db: Db,
  ctx: RequestCtx & { actor: NonNullable<RequestCtx["actor"]> },
  input: { currentPassword: string; newPassword: string },
) {
  const user = await findUserById(db, ctx.actor.userId);
  if (!user || !(await verifyPassword(input.currentPassword, user.password_hash))) {
    throw new AppError("invalid_credentials", "the current password is wrong");
  }
  const hash = await hashPassword(input.newPassword);
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable("users")
      .set({ password_hash: hash, updated_at: iso(ctx.now) })
      .where("id", "=", user.id)
      .execute();
    await revokeSessions(trx, user.id, ctx.now, { except: ctx.actor.sessionId });
    await recordAudit(
      trx,
      {
        actorUserId: user.id,
        action: "user.password_change",
        entityType: "user",
        entityId: user.id,
        requestId: ctx.requestId,
      },
      ctx.now,
    );
  });
}

/** An operator issues a one-time reset token for a user (sent by SMS once SMS exists). */
export async function issuePasswordReset(
  db: Db,
  ctx: RequestCtx,
  userId: string,
  publicUrl: string,
) {
  const user = await findUserById(db, userId);
  if (!user) throw notFound("the user");
  const settings = await getSettings(db);
  const token = newToken();
  const expiresAt = addMs(ctx.now, settings["password_reset.ttl_minutes"] * 60_000);
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable("password_resets")
      .set({ used_at: iso(ctx.now) })
      .where("user_id", "=", userId)
      .where("used_at", "is", null)
      .execute();
    await trx
      .insertInto("password_resets")
      .values({
        id: newId(),
        user_id: userId,
        token_hash: hashToken(token),
        created_by: ctx.actor?.userId ?? null,
        created_at: iso(ctx.now),
        expires_at: iso(expiresAt),
        used_at: null,
      })
      .execute();
    await recordAudit(
      trx,
      {
        actorUserId: ctx.actor?.userId ?? null,
        action: "user.password_reset_issued",
        entityType: "user",
        entityId: userId,
        requestId: ctx.requestId,
      },
      ctx.now,
    );
  });
  return {
    token,
    url: `${publicUrl}/reset-password?token=${encodeURIComponent(token)}`,
    expiresAt: iso(expiresAt),
  };
}

/** Sets a new password with a reset token; every session of the account ends and any lock lifts. */
export async function completePasswordReset(
  db: Db,
  ctx: RequestCtx,
  input: { token: string; newPassword: string },
) {
  const hash = await hashPassword(input.newPassword);
  await db.transaction().execute(async (trx) => {
    const reset = await trx
      .updateTable("password_resets")
      .set({ used_at: iso(ctx.now) })
      .where("token_hash", "=", hashToken(input.token))
      .where("used_at", "is", null)
      .where("expires_at", ">", iso(ctx.now))
      .returning(["user_id"])
      .executeTakeFirst();
    if (!reset)
      throw new AppError(
        "reset_token_invalid",
        "this reset link is not valid any more: ask an operator for a new one",
      );
    await trx
      .updateTable("users")
      .set({
        password_hash: hash,
        failed_logins: 0,
        next_login_at: null,
        locked_until: null,
        updated_at: iso(ctx.now),
      })
      .where("id", "=", reset.user_id)
      .execute();
    await revokeSessions(trx, reset.user_id, ctx.now);
    await recordAudit(
      trx,
      {
        actorUserId: reset.user_id,
        action: "user.password_reset",
        entityType: "user",
        entityId: reset.user_id,
        requestId: ctx.requestId,
      },
      ctx.now,
    );
  });
}

export interface PreferencesPatch {
  displayName?: string | undefined;
  language?: string | undefined;
  timeZone?: string | undefined;
  quietHours?: { start: string; end: string } | null | undefined;
  channels?: string[] | undefined;
}

export async function updatePreferences(
  db: Executor,
  ctx: RequestCtx,
  userId: string,
  patch: PreferencesPatch,
) {
  await db
    .updateTable("users")
    .set({
      display_name: patch.displayName,
      language: patch.language,
      time_zone: patch.timeZone,
      ...(patch.quietHours !== undefined
        ? {
            quiet_hours_start: patch.quietHours?.start ?? null,
            quiet_hours_end: patch.quietHours?.end ?? null,
          }
        : {}),
      channels: patch.channels ? JSON.stringify([...new Set(patch.channels)]) : undefined,
      updated_at: iso(ctx.now),
    })
    .where("id", "=", userId)
    .execute();
  return getUser(db, userId);
}

/** The first operator: from `npm run create-operator` or the bootstrap variables. Idempotent. */
export async function ensureOperator(
  db: Db,
  now: Date,
  input: { email: string; password: string; displayName?: string },
): Promise<{ created: boolean; userId: string }> {
  return db.transaction().execute(async (trx) => {
    const existing = await findUserByLogin(trx, { email: input.email });
    if (existing) {
      await grantRole(trx, existing.id, "operator", null, now);
      return { created: false, userId: existing.id };
    }
    const ctx: RequestCtx = { now, actor: null, requestId: null };
    const user = await createUser(
      trx,
      ctx,
      {
        displayName: input.displayName ?? "Operator",
        email: input.email,
        password: input.password,
      },
      ["operator"],
    );
    return { created: true, userId: user.id };
  });
}
