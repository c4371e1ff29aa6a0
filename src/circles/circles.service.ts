// Family circles: who belongs to a resident, at which level, and invitations to join.

import { authorizeResident, can } from "../access/access";
import { grantRole } from "../accounts/accounts.repository";
import { hashToken } from "../accounts/tokens";
import { recordAudit } from "../audit/audit.service";
import { addMs, iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId, newToken } from "../ids";
import { personForPhone, queueMessage } from "../notifications/queue";
import type { RequestCtx } from "../request-ctx";
import { getSettings } from "../settings/settings.service";
import type { CircleLevel, InvitationRow } from "./circles.table";

type Ctx = RequestCtx & { actor: Actor };

function audit(
  db: Executor,
  ctx: Ctx,
  action: string,
  residentId: string,
  entityId: string,
  details?: Record<string, unknown>,
) {
  return recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action,
      entityType: "circle",
      entityId,
      residentId,
      requestId: ctx.requestId,
      ...(details ? { details } : {}),
    },
    ctx.now,
  );
}

export async function listCircle(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "viewCircle");
  const rows = await db
    .selectFrom("circle_members as m")
    .innerJoin("users as u", "u.id", "m.user_id")
    .select([
      "m.user_id",
      "u.display_name",
      "u.email",
      "u.phone",
      "m.relationship",
      "m.level",
      "m.can_book",
      "m.created_at",
    ])
    .where("m.resident_id", "=", residentId)
    .orderBy("m.created_at")
    .execute();
  return rows.map((r) => ({
    userId: r.user_id,
    displayName: r.display_name,
    email: r.email,
    phone: r.phone,
    relationship: r.relationship,
    level: r.level,
    canBook: r.level === "primary" || Boolean(r.can_book),
    since: r.created_at,
  }));
}

async function primaryCount(db: Executor, residentId: string): Promise<number> {
  const row = await db
    .selectFrom("circle_members")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("resident_id", "=", residentId)
    .where("level", "=", "primary")
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * A resident always keeps an owner: the last primary cannot leave or step down, unless an
 * operator does it (the operators then own the resident).
 */
async function guardLastPrimary(db: Executor, ctx: Ctx, residentId: string, level: CircleLevel) {
  if (level !== "primary" || ctx.actor.roles.includes("operator")) return;
  if ((await primaryCount(db, residentId)) <= 1) {
    throw new AppError(
      "last_primary",
      "this is the circle's only primary member: make someone else primary first, or ask an operator",
    );
  }
}

async function membership(db: Executor, residentId: string, userId: string) {
  const row = await db
    .selectFrom("circle_members")
    .selectAll()
    .where("resident_id", "=", residentId)
    .where("user_id", "=", userId)
    .executeTakeFirst();
  if (!row) throw notFound("that member of the circle");
  return row;
}

export async function changeMember(
  db: Db,
  ctx: Ctx,
  residentId: string,
  userId: string,
  patch: {
    level?: CircleLevel | undefined;
    relationship?: string | undefined;
    canBook?: boolean | undefined;
  },
) {
  await db.transaction().execute(async (trx) => {
    await authorizeResident(trx, ctx.actor, residentId, "manageCircle");
    const member = await membership(trx, residentId, userId);
    if (patch.level && patch.level !== member.level)
      await guardLastPrimary(trx, ctx, residentId, member.level);
    await trx
      .updateTable("circle_members")
      .set({
        level: patch.level,
        relationship: patch.relationship,
        ...(patch.canBook === undefined ? {} : { can_book: patch.canBook ? 1 : 0 }),
      })
      .where("resident_id", "=", residentId)
      .where("user_id", "=", userId)
      .execute();
    await audit(trx, ctx, "circle.member_change", residentId, userId, {
      level: patch.level ?? member.level,
    });
  });
  return listCircle(db, ctx, residentId);
}

/** Primaries and operators remove members; anyone may leave a circle themself. */
export async function removeMember(db: Db, ctx: Ctx, residentId: string, userId: string) {
  await db.transaction().execute(async (trx) => {
    const access = await authorizeResident(trx, ctx.actor, residentId, "viewCircle");
    const leaving = userId === ctx.actor.userId;
    if (!leaving && !can(access, "manageCircle")) {
      throw new AppError(
        "forbidden",
        "only a primary member or an operator can remove someone from the circle",
      );
    }
    const member = await membership(trx, residentId, userId);
    await guardLastPrimary(trx, ctx, residentId, member.level);
    await trx
      .deleteFrom("circle_members")
      .where("resident_id", "=", residentId)
      .where("user_id", "=", userId)
      .execute();
    await audit(trx, ctx, leaving ? "circle.leave" : "circle.member_remove", residentId, userId);
  });
}

export function presentInvitation(row: InvitationRow, now: Date) {
  const status = row.accepted_at
    ? "accepted"
    : row.revoked_at
      ? "revoked"
      : row.expires_at <= iso(now)
        ? "expired"
        : "pending";
  return {
    id: row.id,
    residentId: row.resident_id,
    email: row.email,
    phone: row.phone,
    relationship: row.relationship,
    level: row.level,
    status,
    invitedBy: row.invited_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    acceptedAt: row.accepted_at,
  } as const;
}

export async function invite(
  db: Db,
  ctx: Ctx,
  residentId: string,
  input: {
    email?: string | undefined;
    phone?: string | undefined;
    relationship: string;
    level: CircleLevel;
  },
  publicUrl: string,
) {
  const token = newToken();
  const link = `${publicUrl}/invitations/accept?token=${encodeURIComponent(token)}`;
  const row = await db.transaction().execute(async (trx) => {
    await authorizeResident(trx, ctx.actor, residentId, "manageCircle");
    const settings = await getSettings(trx);
    const row: InvitationRow = {
      id: newId(),
      resident_id: residentId,
      token_hash: hashToken(token),
      invited_by: ctx.actor.userId,
      email: input.email ?? null,
      phone: input.phone ?? null,
      relationship: input.relationship,
      level: input.level,
      created_at: iso(ctx.now),
      expires_at: iso(addMs(ctx.now, settings["invitations.ttl_hours"] * 3_600_000)),
      accepted_at: null,
      accepted_by: null,
      revoked_at: null,
    };
    await trx.insertInto("invitations").values(row).execute();
    await audit(trx, ctx, "circle.invite", residentId, row.id, { level: input.level });
    if (input.phone) {
      // Texted to the invitee; the link (a secret) leaves the delivery record once sent.
      const resident = await trx
        .selectFrom("residents")
        .select(["full_name", "preferred_name", "language", "time_zone"])
        .where("id", "=", residentId)
        .executeTakeFirstOrThrow();
      const person = await personForPhone(trx, input.phone, input.phone, {
        language: resident.language,
        timeZone: resident.time_zone,
      });
      await queueMessage(
        trx,
        person,
        {
          purpose: "invitation",
          message: {
            t: "invitation",
            byName: ctx.actor.displayName,
            residentName: resident.preferred_name ?? resident.full_name,
            url: link,
          },
          channels: ["sms"],
          dedupeKey: `invitation:${row.id}`,
          requireConfirmedPhone: false,
        },
        ctx.now,
        settings,
      );
    }
    return row;
  });
  return { invitation: presentInvitation(row, ctx.now), token, link };
}

export async function listInvitations(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "manageCircle");
  const rows = await db
    .selectFrom("invitations")
    .selectAll()
    .where("resident_id", "=", residentId)
    .orderBy("created_at", "desc")
    .execute();
  return rows.map((r) => presentInvitation(r, ctx.now));
}

export async function revokeInvitation(db: Db, ctx: Ctx, residentId: string, invitationId: string) {
  await db.transaction().execute(async (trx) => {
    await authorizeResident(trx, ctx.actor, residentId, "manageCircle");
    const result = await trx
      .updateTable("invitations")
      .set({ revoked_at: iso(ctx.now) })
      .where("id", "=", invitationId)
      .where("resident_id", "=", residentId)
      .where("accepted_at", "is", null)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw notFound("a pending invitation with that id");
    await audit(trx, ctx, "circle.invitation_revoke", residentId, invitationId);
  });
}

async function findByToken(db: Executor, token: string) {
  const row = await db
    .selectFrom("invitations")
    .selectAll()
    .where("token_hash", "=", hashToken(token))
    .executeTakeFirst();
  if (!row) throw notFound("the invitation (check the link)");
  return row;
}

function assertUsable(row: InvitationRow, now: Date) {
  if (row.accepted_at)
    throw new AppError("invitation_used", "this invitation has already been accepted");
  if (row.revoked_at)
    throw new AppError("invitation_expired", "this invitation was withdrawn: ask for a new one");
  if (row.expires_at <= iso(now))
    throw new AppError("invitation_expired", "this invitation has expired: ask for a new one");
}

/** What the invitation page shows before accepting: who invites, to whose circle. */
export async function previewInvitation(db: Executor, now: Date, token: string) {
  const row = await findByToken(db, token);
  const resident = await db
    .selectFrom("residents")
    .select(["full_name", "preferred_name"])
    .where("id", "=", row.resident_id)
    .executeTakeFirstOrThrow();
  const inviter = await db
    .selectFrom("users")
    .select("display_name")
    .where("id", "=", row.invited_by)
    .executeTakeFirstOrThrow();
  return {
    residentName: resident.preferred_name ?? resident.full_name,
    invitedBy: inviter.display_name,
    relationship: row.relationship,
    level: row.level,
    status: presentInvitation(row, now).status,
    expiresAt: row.expires_at,
  };
}

/** Accepting links the signed-in account to the circle. An invitation names its recipient. */
export async function acceptInvitation(db: Db, ctx: Ctx, token: string) {
  return db.transaction().execute(async (trx) => {
    const row = await findByToken(trx, token);
    assertUsable(row, ctx.now);
    const user = await trx
      .selectFrom("users")
      .select(["email", "phone"])
      .where("id", "=", ctx.actor.userId)
      .executeTakeFirstOrThrow();
    const emailMatches = row.email !== null && row.email === user.email;
    const phoneMatches = row.phone !== null && row.phone === user.phone;
    if ((row.email !== null || row.phone !== null) && !emailMatches && !phoneMatches) {
      throw new AppError(
        "invitation_wrong_recipient",
        "this invitation was sent to someone else: sign in with the email or phone it was sent to",
      );
    }
    const existing = await trx
      .selectFrom("circle_members")
      .select("level")
      .where("resident_id", "=", row.resident_id)
      .where("user_id", "=", ctx.actor.userId)
      .executeTakeFirst();
    if (existing) throw new AppError("already_exists", "you are already in this family circle");
    // Marking it accepted only where still unaccepted makes a double submit lose, not double-join.
    const claimed = await trx
      .updateTable("invitations")
      .set({ accepted_at: iso(ctx.now), accepted_by: ctx.actor.userId })
      .where("id", "=", row.id)
      .where("accepted_at", "is", null)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) === 0)
      throw new AppError("invitation_used", "this invitation has already been accepted");
    await trx
      .insertInto("circle_members")
      .values({
        resident_id: row.resident_id,
        user_id: ctx.actor.userId,
        relationship: row.relationship,
        level: row.level,
        added_by: row.invited_by,
        created_at: iso(ctx.now),
      })
      .execute();
    await grantRole(trx, ctx.actor.userId, "family", row.invited_by, ctx.now);
    await audit(trx, ctx, "circle.join", row.resident_id, ctx.actor.userId, {
      invitationId: row.id,
      level: row.level,
    });
    return { residentId: row.resident_id, level: row.level, relationship: row.relationship };
  });
}
