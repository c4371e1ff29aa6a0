// The catalog: services that a provider's admins publish, and the search families use. Search is
// always limited to verified providers serving the resident (by locality or by radius), and only
// for someone who may see that resident.
import type { z } from "@hono/zod-openapi";
import { authorizeResident } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { localityKey } from "../providers/providers.repository";
import { authorizeProvider, ratingOf } from "../providers/providers.service";
import type { ProviderCategory, ProviderRow, ServiceRow } from "../providers/providers.table";
import type { RequestCtx } from "../request-ctx";
import {
  findService,
  insertService,
  listServicesOf,
  queryWords,
  searchServices,
  updateServiceRow,
} from "./catalog.repository";
import type {
  NewServiceSchema,
  SearchQuery,
  UpdateServiceSchema,
  weekDays,
} from "./catalog.schemas";

type Ctx = RequestCtx & { actor: Actor };

export function presentService(s: ServiceRow) {
  return {
    id: s.id,
    providerId: s.provider_id,
    title: s.title,
    category: s.category,
    description: s.description,
    price: { amountMinor: Number(s.price_minor), currency: s.currency },
    unit: s.unit,
    durationMinutes: Number(s.duration_minutes),
    minNoticeHours: Number(s.min_notice_hours),
    availability: JSON.parse(s.availability) as {
      day: (typeof weekDays)[number];
      start: string;
      end: string;
    }[],
    active: Number(s.active) === 1,
    createdAt: s.created_at,
    updatedAt: s.updated_at,
  };
}

function audit(
  db: Executor,
  ctx: Ctx,
  action: string,
  service: ServiceRow | { id: string; provider_id: string },
  details?: Record<string, unknown>,
) {
  return recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action,
      entityType: "service",
      entityId: service.id,
      requestId: ctx.requestId,
      details: { providerId: service.provider_id, ...details },
    },
    ctx.now,
  );
}

function checkCategory(provider: ProviderRow, category: ProviderCategory) {
  const offered = JSON.parse(provider.categories) as ProviderCategory[];
  if (!offered.includes(category)) {
    throw new AppError(
      "validation_failed",
      `this provider is registered for ${offered.join(", ")}, not ${category}`,
      { issues: [{ path: "category", message: "not one of the provider's categories" }] },
    );
  }
}

export async function createService(
  db: Db,
  ctx: Ctx,
  providerId: string,
  input: z.infer<typeof NewServiceSchema>,
) {
  const id = newId();
  await db.transaction().execute(async (trx) => {
    const { provider } = await authorizeProvider(trx, ctx.actor, providerId, "manage");
    checkCategory(provider, input.category);
    const now = iso(ctx.now);
    await insertService(trx, {
      id,
      provider_id: providerId,
      title: input.title,
      category: input.category,
      description: input.description,
      price_minor: input.priceMinor,
      currency: input.currency,
      unit: input.unit,
      duration_minutes: input.durationMinutes,
      min_notice_hours: input.minNoticeHours,
      availability: JSON.stringify(input.availability),
      active: input.active ? 1 : 0,
      created_by: ctx.actor.userId,
      created_at: now,
      updated_at: now,
    });
    await audit(trx, ctx, "service.create", { id, provider_id: providerId });
  });
  return presentService((await findService(db, id))!);
}

/**
 * The service, if the actor may `action` it. Its provider's admins and operators see every
 * service; others only active services of verified providers; anyone else gets a 404.
 */
async function authorizeService(
  db: Executor,
  actor: Actor,
  serviceId: string,
  action: "view" | "manage",
) {
  const service = await findService(db, serviceId);
  if (!service) throw notFound("the service");
  try {
    const access = await authorizeProvider(db, actor, service.provider_id, action);
    if (action === "view" && access.relations.length === 0 && Number(service.active) !== 1)
      throw notFound("the service");
    return { service, provider: access.provider };
  } catch (error) {
    if (error instanceof AppError && error.code === "not_found") throw notFound("the service");
    throw error;
  }
}

export async function getService(db: Executor, ctx: Ctx, serviceId: string) {
  return presentService((await authorizeService(db, ctx.actor, serviceId, "view")).service);
}

export async function listProviderServices(db: Executor, ctx: Ctx, providerId: string) {
  const { relations } = await authorizeProvider(db, ctx.actor, providerId, "view");
  const rows = await listServicesOf(db, providerId, relations.length === 0);
  return rows.map(presentService);
}

export async function updateService(
  db: Db,
  ctx: Ctx,
  serviceId: string,
  patch: z.infer<typeof UpdateServiceSchema>,
) {
  await db.transaction().execute(async (trx) => {
    const { service, provider } = await authorizeService(trx, ctx.actor, serviceId, "manage");
    if (patch.category) checkCategory(provider, patch.category);
    await updateServiceRow(trx, service, {
      title: patch.title,
      category: patch.category,
      description: patch.description,
      price_minor: patch.priceMinor,
      currency: patch.currency,
      unit: patch.unit,
      duration_minutes: patch.durationMinutes,
      min_notice_hours: patch.minNoticeHours,
      availability: patch.availability ? JSON.stringify(patch.availability) : undefined,
      active: patch.active === undefined ? undefined : patch.active ? 1 : 0,
      updated_at: iso(ctx.now),
    });
    await audit(trx, ctx, "service.update", service, { fields: Object.keys(patch) });
  });
  return presentService((await findService(db, serviceId))!);
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { o?: unknown };
    if (
      typeof parsed.o === "number" &&
      Number.isInteger(parsed.o) &&
      parsed.o >= 0 &&
      parsed.o <= 10_000
    )
      return parsed.o;
  } catch {}
  throw new AppError("validation_failed", "the cursor is not one this search returned", {
    issues: [{ path: "query.cursor", message: "not a cursor from a previous page" }],
  });
}

const encodeCursor = (offset: number) =>
  Buffer.from(JSON.stringify({ o: offset })).toString("base64url");

/** Catalog search for a resident the actor may see (unrelated: 404). */
export async function searchCatalog(db: Executor, ctx: Ctx, query: z.infer<typeof SearchQuery>) {
  const { resident } = await authorizeResident(db, ctx.actor, query.residentId, "view");
  return searchForResident(db, resident, query);
}

/** The search itself, for a resident already authorised. */
export async function searchForResident(
  db: Executor,
  resident: { locality: string; latitude: number; longitude: number },
  query: Omit<z.infer<typeof SearchQuery>, "residentId">,
) {
  const offset = decodeCursor(query.cursor);
  const rows = await searchServices(db, {
    localityKey: localityKey(resident.locality),
    latitude: Number(resident.latitude),
    longitude: Number(resident.longitude),
    words: queryWords(query.q ?? ""),
    category: query.category,
    minPrice: query.minPrice,
    maxPrice: query.maxPrice,
    minRating: query.minRating,
    sort: query.sort,
    limit: query.limit,
    offset,
  });
  const page = rows.slice(0, query.limit);
  return {
    items: page.map((r) => ({
      service: presentService(r),
      provider: {
        id: r.provider_id,
        displayName: r.provider_name,
        rating: ratingOf({
          rating_sum: r.provider_rating_sum,
          rating_count: r.provider_rating_count,
        }),
      },
      distanceKm: r.distance_km === null ? null : Math.round(Number(r.distance_km) * 100) / 100,
    })),
    nextCursor: rows.length > query.limit ? encodeCursor(offset + query.limit) : null,
  };
}
