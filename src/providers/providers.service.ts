// Providers: an organisation signs up (its user becomes a provider_admin), an operator verifies,
// rejects or suspends it with a reason. Only verified providers are listed and searchable.
// Access by relation: its admins and operators see the full record; anyone signed in sees a
// verified provider's public profile; anyone else gets a 404.
import type { z } from "@hono/zod-openapi";
import { grantRole } from "../accounts/accounts.repository";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { isUniqueViolation } from "../db/database";
import { AppError, forbidden, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { invitePhone } from "../notifications/notifications.service";
import type { RequestCtx } from "../request-ctx";
import {
  findProvider,
  findProviderByLicence,
  insertProvider,
  isProviderAdmin,
  listProviderRows,
  listProvidersOf,
  localitiesOf,
  replaceLocalities,
  updateProviderRow,
} from "./providers.repository";
import type {
  NewProviderSchema,
  ProviderListQuery,
  ProviderStatusChangeSchema,
  UpdateProviderSchema,
} from "./providers.schemas";
import type { ProviderCategory, ProviderRow, ProviderStatus } from "./providers.table";

type Ctx = RequestCtx & { actor: Actor };

export type ProviderRelation = "operator" | "admin";

export const providerActions = {
  /** The full record (licence, contact, on-call, status reason). */
  viewFull: ["operator", "admin"],
  /** Profile, services, workers and staff: the provider's own business. */
  manage: ["admin"],
  viewStaff: ["operator", "admin"],
  decide: ["operator"],
} as const satisfies Record<string, readonly ProviderRelation[]>;
export type ProviderAction = keyof typeof providerActions;

const describe: Record<ProviderAction, string> = {
  viewFull: "see this provider's full record",
  manage: "manage this provider's profile, services or workers",
  viewStaff: "see this provider's workers",
  decide: "verify, reject or suspend a provider",
};

export interface ProviderAccess {
  provider: ProviderRow;
  relations: ProviderRelation[];
}

async function relationsToProvider(db: Executor, actor: Actor, providerId: string) {
  const relations: ProviderRelation[] = [];
  if (actor.roles.includes("operator")) relations.push("operator");
  if (
    actor.roles.includes("provider_admin") &&
    (await isProviderAdmin(db, providerId, actor.userId))
  )
    relations.push("admin");
  return relations;
}

/**
 * The provider, if the actor may do `action` to it. Unrelated actors get a 404 (a verified
 * provider's public profile is the one thing they may see: action "view").
 */
export async function authorizeProvider(
  db: Executor,
  actor: Actor,
  providerId: string,
  action: ProviderAction | "view",
): Promise<ProviderAccess> {
  const provider = await findProvider(db, providerId);
  if (!provider) throw notFound("the provider");
  const relations = await relationsToProvider(db, actor, providerId);
  if (action === "view") {
    if (relations.length === 0 && provider.status !== "verified") throw notFound("the provider");
    return { provider, relations };
  }
  if (relations.length === 0) throw notFound("the provider");
  const allowed: readonly ProviderRelation[] = providerActions[action];
  if (!relations.some((r) => allowed.includes(r)))
    throw forbidden(`as ${relations.join(" and ")} you may not ${describe[action]}`);
  return { provider, relations };
}

export function ratingOf(p: { rating_sum: number; rating_count: number }) {
  const count = Number(p.rating_count);
  return {
    average: count > 0 ? Math.round((Number(p.rating_sum) / count) * 100) / 100 : null,
    count,
  };
}

export function presentPublicProvider(p: ProviderRow, localities: string[]) {
  return {
    id: p.id,
    displayName: p.display_name,
    categories: JSON.parse(p.categories) as ProviderCategory[],
    serviceArea: {
      localities,
      centre:
        p.centre_latitude === null || p.centre_longitude === null
          ? null
          : { latitude: Number(p.centre_latitude), longitude: Number(p.centre_longitude) },
      radiusKm: p.radius_km === null ? null : Number(p.radius_km),
    },
    status: p.status,
    rating: ratingOf(p),
  };
}

export function presentProvider(p: ProviderRow, localities: string[]) {
  return {
    ...presentPublicProvider(p, localities),
    legalName: p.legal_name,
    licenceNumber: p.licence_number,
    contact: { email: p.contact_email, phone: p.contact_phone },
    onCall: { name: p.on_call_name, phone: p.on_call_phone },
    statusReason: p.status_reason,
    statusChangedAt: p.status_changed_at,
    noShowCount: Number(p.no_show_count),
    createdAt: p.created_at,
    updatedAt: p.updated_at,
  };
}

export function auditProvider(
  db: Executor,
  ctx: Ctx,
  action: string,
  providerId: string,
  details?: Record<string, unknown>,
) {
  return recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action,
      entityType: "provider",
      entityId: providerId,
      requestId: ctx.requestId,
      ...(details ? { details } : {}),
    },
    ctx.now,
  );
}

function areaColumns(area: z.infer<typeof NewProviderSchema>["serviceArea"]) {
  return {
    centre_latitude: area.centre?.latitude ?? null,
    centre_longitude: area.centre?.longitude ?? null,
    radius_km: area.centre ? (area.radiusKm ?? null) : null,
  };
}

const licenceTaken = () =>
  new AppError("already_exists", "a provider with this licence number is already registered", {
    issues: [{ path: "licenceNumber", message: "already registered" }],
  });

/** An organisation signs up; the signed-in user becomes its first admin. It waits for an operator. */
export async function signUpProvider(db: Db, ctx: Ctx, input: z.infer<typeof NewProviderSchema>) {
  const id = newId();
  const now = iso(ctx.now);
  try {
    await db.transaction().execute(async (trx) => {
      if (await findProviderByLicence(trx, input.licenceNumber)) throw licenceTaken();
      await insertProvider(trx, {
        id,
        legal_name: input.legalName,
        display_name: input.displayName,
        licence_number: input.licenceNumber,
        categories: JSON.stringify([...new Set(input.categories)]),
        ...areaColumns(input.serviceArea),
        contact_email: input.contact.email,
        contact_phone: input.contact.phone,
        on_call_name: input.onCall.name,
        on_call_phone: input.onCall.phone,
        status: "pending",
        status_reason: null,
        status_changed_at: null,
        status_changed_by: null,
        created_by: ctx.actor.userId,
        created_at: now,
        updated_at: now,
      });
      await replaceLocalities(trx, id, input.serviceArea.localities);
      await trx
        .insertInto("provider_admins")
        .values({ provider_id: id, user_id: ctx.actor.userId, added_by: null, created_at: now })
        .execute();
      await grantRole(trx, ctx.actor.userId, "provider_admin", ctx.actor.userId, ctx.now);
      await auditProvider(trx, ctx, "provider.signup", id);
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw licenceTaken();
    throw error;
  }
  return fullProvider(db, id);
}

async function fullProvider(db: Executor, providerId: string) {
  const provider = (await findProvider(db, providerId))!;
  return presentProvider(provider, (await localitiesOf(db, [providerId])).get(providerId) ?? []);
}

export async function getProvider(db: Executor, ctx: Ctx, providerId: string) {
  const { provider, relations } = await authorizeProvider(db, ctx.actor, providerId, "view");
  const localities = (await localitiesOf(db, [providerId])).get(providerId) ?? [];
  return relations.length > 0
    ? presentProvider(provider, localities)
    : presentPublicProvider(provider, localities);
}

export async function listMyProviders(db: Executor, ctx: Ctx) {
  const rows = await listProvidersOf(db, ctx.actor.userId);
  const localities = await localitiesOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => presentProvider(r, localities.get(r.id) ?? []));
}

export async function listProvidersForOperator(
  db: Executor,
  ctx: Ctx,
  query: z.infer<typeof ProviderListQuery>,
) {
  if (!ctx.actor.roles.includes("operator")) throw forbidden("only operators list all providers");
  const rows = await listProviderRows(db, query);
  const localities = await localitiesOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => presentProvider(r, localities.get(r.id) ?? []));
}

export async function updateProvider(
  db: Db,
  ctx: Ctx,
  providerId: string,
  patch: z.infer<typeof UpdateProviderSchema>,
) {
  await db.transaction().execute(async (trx) => {
    await authorizeProvider(trx, ctx.actor, providerId, "manage");
    await updateProviderRow(trx, providerId, {
      display_name: patch.displayName,
      categories: patch.categories ? JSON.stringify([...new Set(patch.categories)]) : undefined,
      ...(patch.serviceArea ? areaColumns(patch.serviceArea) : {}),
      contact_email: patch.contact?.email,
      contact_phone: patch.contact?.phone,
      on_call_name: patch.onCall?.name,
      on_call_phone: patch.onCall?.phone,
      updated_at: iso(ctx.now),
    });
    if (patch.serviceArea) await replaceLocalities(trx, providerId, patch.serviceArea.localities);
    await auditProvider(trx, ctx, "provider.update", providerId, { fields: Object.keys(patch) });
    if (patch.onCall) await inviteOnCall(trx, providerId, ctx.now);
  });
  return fullProvider(db, providerId);
}

const transitions: Record<ProviderStatus, readonly ProviderStatus[]> = {
  pending: ["verified", "rejected"],
  verified: ["suspended"],
  rejected: ["verified"],
  suspended: ["verified"],
};

export async function changeProviderStatus(
  db: Db,
  ctx: Ctx,
  providerId: string,
  change: z.infer<typeof ProviderStatusChangeSchema>,
) {
  await db.transaction().execute(async (trx) => {
    const { provider } = await authorizeProvider(trx, ctx.actor, providerId, "decide");
    if (!transitions[provider.status].includes(change.status)) {
      throw new AppError(
        "invalid_state",
        `a ${provider.status} provider cannot become ${change.status}`,
      );
    }
    await updateProviderRow(trx, providerId, {
      status: change.status,
      status_reason: change.reason ?? null,
      status_changed_at: iso(ctx.now),
      status_changed_by: ctx.actor.userId,
      updated_at: iso(ctx.now),
    });
    await auditProvider(trx, ctx, `provider.${change.status}`, providerId, {
      from: provider.status,
      to: change.status,
      reason: change.reason ?? null,
    });
    if (change.status === "verified") await inviteOnCall(trx, providerId, ctx.now);
  });
  return fullProvider(db, providerId);
}

/**
 * A verified provider's on-call number must be confirmed by its owner before it gets alert texts:
 * it is asked once when the provider is verified and whenever the number changes.
 */
async function inviteOnCall(trx: Executor, providerId: string, now: Date) {
  const p = await findProvider(trx, providerId);
  if (p?.status !== "verified") return;
  // Spoken to like the admin who signed the provider up (same place, most likely same language).
  const admin = p.created_by
    ? await trx
        .selectFrom("users")
        .select(["language", "time_zone"])
        .where("id", "=", p.created_by)
        .executeTakeFirst()
    : undefined;
  await invitePhone(
    trx,
    {
      phone: p.on_call_phone,
      name: p.on_call_name,
      language: admin?.language ?? "en",
      timeZone: admin?.time_zone ?? "UTC",
    },
    { t: "on_call_invite", providerName: p.display_name },
    now,
  );
}

/** Who the provider names for urgent matters (an escalation tier "provider_on_call"). */
export async function providerOnCall(
  db: Executor,
  providerId: string,
): Promise<{ name: string; phone: string; providerStatus: ProviderStatus } | undefined> {
  const row = await db
    .selectFrom("providers")
    .select(["on_call_name", "on_call_phone", "status"])
    .where("id", "=", providerId)
    .executeTakeFirst();
  return row
    ? { name: row.on_call_name, phone: row.on_call_phone, providerStatus: row.status }
    : undefined;
}
