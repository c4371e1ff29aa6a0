// Residents: the elderly person's profile, health and access notes (every read audited), status.
import type { z } from "@hono/zod-openapi";
import { authorizeResident, mainRelation, type Relation } from "../access/access";
import { createUser } from "../accounts/accounts.service";
import { recordAudit } from "../audit/audit.service";
import { cancelVisitsWhileAway } from "../bookings/bookings.service";
import { createInitialPlan } from "../careplans/careplans.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError, forbidden } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import type { RequestCtx } from "../request-ctx";
import {
  circleLevelsFor,
  insertResident,
  listResidents,
  updateResident,
} from "./residents.repository";
import type {
  CreateResidentSchema,
  HealthUpdateSchema,
  ResidentListQuery,
  StatusChangeSchema,
  UpdateResidentSchema,
} from "./residents.schemas";
import type { ResidentRow } from "./residents.table";

type Ctx = RequestCtx & { actor: Actor };

export function presentResident(r: ResidentRow, myRelation: Exclude<Relation, "booker"> | null) {
  return {
    id: r.id,
    fullName: r.full_name,
    preferredName: r.preferred_name,
    dateOfBirth: r.date_of_birth,
    address: {
      line1: r.address_line1,
      line2: r.address_line2,
      locality: r.locality,
      region: r.region,
      postalCode: r.postal_code,
      country: r.country,
      latitude: Number(r.latitude),
      longitude: Number(r.longitude),
    },
    timeZone: r.time_zone,
    language: r.language,
    phone: r.phone,
    status: r.status,
    pausedFrom: r.paused_from,
    pausedUntil: r.paused_until,
    statusReason: r.status_reason,
    confirmed: r.confirmed_at !== null,
    confirmedAt: r.confirmed_at,
    hasAccount: r.user_id !== null,
    myRelation,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function audit(
  db: Executor,
  ctx: Ctx,
  action: string,
  residentId: string,
  details?: Record<string, unknown>,
) {
  return recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action,
      entityType: "resident",
      entityId: residentId,
      residentId,
      requestId: ctx.requestId,
      ...(details ? { details } : {}),
    },
    ctx.now,
  );
}

/**
 * Operators create residents directly. A family member may register a parent: they become the
 * primary of the new circle, and the registration waits for an operator's confirmation.
 */
export async function createResident(
  db: Db,
  ctx: Ctx,
  input: z.infer<typeof CreateResidentSchema>,
) {
  const isOperator = ctx.actor.roles.includes("operator");
  const isFamily = ctx.actor.roles.includes("family");
  if (!isOperator && !isFamily)
    throw forbidden("only operators and family members register residents");
  const asFamily = !isOperator || input.relationship !== undefined;
  if (asFamily && !isFamily)
    throw forbidden("only family members register a relative with a relationship");
  if (asFamily && !input.relationship) {
    throw new AppError("validation_failed", "say how you are related to the resident", {
      issues: [
        { path: "relationship", message: "required when a family member registers a resident" },
      ],
    });
  }
  const now = iso(ctx.now);
  const id = newId();
  await db.transaction().execute(async (trx) => {
    await insertResident(trx, {
      id,
      user_id: null,
      full_name: input.fullName,
      preferred_name: input.preferredName ?? null,
      date_of_birth: input.dateOfBirth,
      address_line1: input.address.line1,
      address_line2: input.address.line2 ?? null,
      locality: input.address.locality,
      region: input.address.region ?? null,
      postal_code: input.address.postalCode ?? null,
      country: input.address.country,
      latitude: input.address.latitude,
      longitude: input.address.longitude,
      time_zone: input.timeZone,
      language: input.language,
      phone: input.phone ?? null,
      medical_notes: input.medicalNotes ?? null,
      allergies: JSON.stringify(input.allergies ?? []),
      access_notes: input.accessNotes ?? null,
      status: "active",
      paused_from: null,
      paused_until: null,
      status_reason: null,
      confirmed_at: isOperator ? now : null,
      confirmed_by: isOperator ? ctx.actor.userId : null,
      created_by: ctx.actor.userId,
      created_at: now,
      updated_at: now,
    });
    if (asFamily) {
      await trx
        .insertInto("circle_members")
        .values({
          resident_id: id,
          user_id: ctx.actor.userId,
          relationship: input.relationship!,
          level: "primary",
          added_by: ctx.actor.userId,
          created_at: now,
        })
        .execute();
    }
    await createInitialPlan(
      trx,
      id,
      ctx.actor.userId,
      ctx.now,
      asFamily ? ctx.actor.userId : undefined,
    );
    await audit(trx, ctx, "resident.create", id, { confirmed: isOperator });
  });
  return getResident(db, ctx, id);
}

export async function getResident(db: Executor, ctx: Ctx, residentId: string) {
  const { resident, relations } = await authorizeResident(db, ctx.actor, residentId, "view");
  return presentResident(resident, mainRelation(relations));
}

export async function listVisibleResidents(
  db: Executor,
  ctx: Ctx,
  query: z.infer<typeof ResidentListQuery>,
) {
  const isOperator = ctx.actor.roles.includes("operator");
  const rows = await listResidents(db, {
    ...(isOperator ? {} : { visibleTo: ctx.actor.userId }),
    ...(query.status ? { status: query.status } : {}),
    ...(query.pending ? { pending: query.pending === "true" } : {}),
    ...(query.q ? { q: query.q } : {}),
    limit: query.limit,
    offset: query.offset,
  });
  const levels = await circleLevelsFor(
    db,
    ctx.actor.userId,
    rows.map((r) => r.id),
  );
  return rows.map((r) => {
    const relation: Exclude<Relation, "booker"> | null = isOperator
      ? "operator"
      : (levels.get(r.id) ?? (r.user_id === ctx.actor.userId ? "self" : null));
    return presentResident(r, relation);
  });
}

export async function updateProfile(
  db: Db,
  ctx: Ctx,
  residentId: string,
  patch: z.infer<typeof UpdateResidentSchema>,
) {
  await db.transaction().execute(async (trx) => {
    await authorizeResident(trx, ctx.actor, residentId, "update");
    await updateResident(trx, residentId, {
      full_name: patch.fullName,
      preferred_name: patch.preferredName,
      date_of_birth: patch.dateOfBirth,
      ...(patch.address
        ? {
            address_line1: patch.address.line1,
            address_line2: patch.address.line2 ?? null,
            locality: patch.address.locality,
            region: patch.address.region ?? null,
            postal_code: patch.address.postalCode ?? null,
            country: patch.address.country,
            latitude: patch.address.latitude,
            longitude: patch.address.longitude,
          }
        : {}),
      time_zone: patch.timeZone,
      language: patch.language,
      phone: patch.phone,
      updated_at: iso(ctx.now),
    });
    await audit(trx, ctx, "resident.update", residentId, { fields: Object.keys(patch) });
  });
  return getResident(db, ctx, residentId);
}

export async function readHealth(db: Executor, ctx: Ctx, residentId: string) {
  const { resident } = await authorizeResident(db, ctx.actor, residentId, "readHealth");
  await audit(db, ctx, "resident.health.read", residentId);
  return {
    medicalNotes: resident.medical_notes,
    allergies: JSON.parse(resident.allergies) as string[],
  };
}

export async function writeHealth(
  db: Db,
  ctx: Ctx,
  residentId: string,
  patch: z.infer<typeof HealthUpdateSchema>,
) {
  await db.transaction().execute(async (trx) => {
    await authorizeResident(trx, ctx.actor, residentId, "writeHealth");
    await updateResident(trx, residentId, {
      medical_notes: patch.medicalNotes,
      allergies: patch.allergies ? JSON.stringify(patch.allergies) : undefined,
      updated_at: iso(ctx.now),
    });
    await audit(trx, ctx, "resident.health.update", residentId, { fields: Object.keys(patch) });
  });
  return readHealth(db, ctx, residentId);
}

export async function readAccessNotes(db: Executor, ctx: Ctx, residentId: string) {
  const { resident } = await authorizeResident(db, ctx.actor, residentId, "readAccessNotes");
  await audit(db, ctx, "resident.access_notes.read", residentId);
  return { accessNotes: resident.access_notes };
}

export async function writeAccessNotes(
  db: Db,
  ctx: Ctx,
  residentId: string,
  accessNotes: string | null,
) {
  await db.transaction().execute(async (trx) => {
    await authorizeResident(trx, ctx.actor, residentId, "writeAccessNotes");
    await updateResident(trx, residentId, { access_notes: accessNotes, updated_at: iso(ctx.now) });
    await audit(trx, ctx, "resident.access_notes.update", residentId);
  });
  return { accessNotes };
}

export async function confirmResident(db: Db, ctx: Ctx, residentId: string) {
  await db.transaction().execute(async (trx) => {
    const { resident } = await authorizeResident(trx, ctx.actor, residentId, "confirm");
    if (resident.confirmed_at)
      throw new AppError("invalid_state", "this resident is already confirmed");
    await updateResident(trx, residentId, {
      confirmed_at: iso(ctx.now),
      confirmed_by: ctx.actor.userId,
      updated_at: iso(ctx.now),
    });
    await audit(trx, ctx, "resident.confirm", residentId);
  });
  return getResident(db, ctx, residentId);
}

/** Today's date in the resident's own time zone. */
function localToday(timeZone: string, now: Date): string {
  return new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(now);
}

export async function changeStatus(
  db: Db,
  ctx: Ctx,
  residentId: string,
  change: z.infer<typeof StatusChangeSchema>,
) {
  await db.transaction().execute(async (trx) => {
    const access = await authorizeResident(
      trx,
      ctx.actor,
      residentId,
      change.status === "archived" ? "archive" : "changeStatus",
    );
    const { resident } = access;
    if (resident.status === "archived" && !ctx.actor.roles.includes("operator")) {
      throw forbidden("only an operator can bring back an archived resident");
    }
    let patch: Parameters<typeof updateResident>[2];
    if (change.status === "paused") {
      const from = change.from ?? localToday(resident.time_zone, ctx.now);
      if (change.until && change.until < from) {
        throw new AppError("validation_failed", "the return date is before the first day away", {
          issues: [{ path: "until", message: "must be on or after from" }],
        });
      }
      patch = {
        status: "paused",
        paused_from: from,
        paused_until: change.until ?? null,
        status_reason: change.reason,
      };
    } else {
      patch = {
        status: change.status,
        paused_from: null,
        paused_until: null,
        status_reason: change.reason ?? null,
      };
    }
    await updateResident(trx, residentId, { ...patch, updated_at: iso(ctx.now) });
    if (patch.status === "paused" && patch.paused_from) {
      await cancelVisitsWhileAway(
        trx,
        residentId,
        { from: patch.paused_from, until: patch.paused_until ?? null },
        ctx.actor.userId,
        ctx.now,
      );
    }
    await audit(trx, ctx, "resident.status", residentId, {
      from: resident.status,
      to: change.status,
    });
  });
  return getResident(db, ctx, residentId);
}

/** A login for the resident themself (to read a simple page of their own). */
export async function createResidentAccount(
  db: Db,
  ctx: Ctx,
  residentId: string,
  input: { email?: string | undefined; phone?: string | undefined; password: string },
) {
  return db.transaction().execute(async (trx) => {
    const { resident } = await authorizeResident(trx, ctx.actor, residentId, "update");
    if (resident.user_id)
      throw new AppError("already_exists", "this resident already has an account");
    const user = await createUser(
      trx,
      ctx,
      {
        displayName: resident.preferred_name ?? resident.full_name,
        ...input,
        language: resident.language,
        timeZone: resident.time_zone,
      },
      ["resident"],
    );
    await updateResident(trx, residentId, { user_id: user.id, updated_at: iso(ctx.now) });
    await audit(trx, ctx, "resident.account_create", residentId, { userId: user.id });
    return { userId: user.id };
  });
}
