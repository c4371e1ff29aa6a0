// Needs and offers: when the catalog lacks what a family wants, a primary posts a need for the
// resident; verified providers serving the resident's area see it and offer (price, time,
// message); the family accepts one, which becomes an accepted booking with its price in escrow,
// and the other offers are declined. A need nobody took expires by itself (a durable job).
import { authorizeResident } from "../access/access";
import { createBooking } from "../bookings/bookings.service";
import { servingProviders } from "../catalog/catalog.repository";
import { iso } from "../clock";
import type { Executor, Trx } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { insertJob } from "../jobs/jobs.repository";
import { walletCurrency } from "../ledger/wallet.service";
import { isProviderAdmin, localityKey } from "../providers/providers.repository";
import type { RequestCtx } from "../request-ctx";
import type { NeedRow, OfferRow } from "./needs.table";

type Ctx = RequestCtx & { actor: Actor };
export const EXPIRE_NEED_JOB = "needs.expire";

export function presentOffer(o: OfferRow) {
  return {
    id: o.id,
    needId: o.need_id,
    providerId: o.provider_id,
    serviceId: o.service_id,
    price: Number(o.price_minor),
    date: o.visit_date,
    time: o.visit_time,
    message: o.message,
    status: o.status,
    createdAt: o.created_at,
  };
}

export function presentNeed(n: NeedRow, offers?: OfferRow[]) {
  return {
    id: n.id,
    residentId: n.resident_id,
    category: n.category,
    description: n.description,
    date: n.wanted_date,
    time: n.wanted_time,
    budget: n.budget_minor === null ? null : Number(n.budget_minor),
    currency: n.currency,
    expiresAt: n.expires_at,
    status: n.status,
    bookingId: n.booking_id,
    createdAt: n.created_at,
    ...(offers ? { offers: offers.map(presentOffer) } : {}),
  };
}

export interface NewNeed {
  category: string;
  description: string;
  date: string;
  time?: string | undefined;
  budget?: number | undefined;
  expiresAt: string;
}

export async function postNeed(trx: Trx, ctx: Ctx, residentId: string, input: NewNeed) {
  await authorizeResident(trx, ctx.actor, residentId, "book");
  if (input.expiresAt <= iso(ctx.now)) {
    throw new AppError("validation_failed", "a need must expire in the future", {
      issues: [{ path: "expiresAt", message: "in the past" }],
    });
  }
  const need: NeedRow = {
    id: newId(),
    resident_id: residentId,
    posted_by: ctx.actor.userId,
    category: input.category,
    description: input.description,
    wanted_date: input.date,
    wanted_time: input.time ?? null,
    budget_minor: input.budget ?? null,
    currency: await walletCurrency(trx),
    expires_at: input.expiresAt,
    status: "open",
    accepted_offer_id: null,
    booking_id: null,
    created_at: iso(ctx.now),
    updated_at: iso(ctx.now),
  };
  await trx.insertInto("needs").values(need).execute();
  await insertJob(
    trx,
    {
      kind: EXPIRE_NEED_JOB,
      payload: { needId: need.id },
      runAt: new Date(input.expiresAt),
      maxAttempts: 1_000_000,
      dedupeKey: `need-expire:${need.id}`,
    },
    ctx.now,
  );
  return presentNeed(need, []);
}

async function providersServing(db: Executor, residentId: string) {
  const r = await db
    .selectFrom("residents")
    .select(["locality", "latitude", "longitude"])
    .where("id", "=", residentId)
    .executeTakeFirstOrThrow();
  const serving = await servingProviders(db, {
    localityKey: localityKey(r.locality),
    latitude: r.latitude,
    longitude: r.longitude,
  });
  return new Set(serving.providerIds);
}

/** The family's view: their resident's needs with every offer. */
export async function needsOfResident(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "view");
  const needs = await db
    .selectFrom("needs")
    .selectAll()
    .where("resident_id", "=", residentId)
    .orderBy("created_at", "desc")
    .execute();
  const offers = needs.length
    ? await db
        .selectFrom("offers")
        .selectAll()
        .where(
          "need_id",
          "in",
          needs.map((n) => n.id),
        )
        .orderBy("created_at")
        .execute()
    : [];
  return {
    items: needs.map((n) =>
      presentNeed(
        n,
        offers.filter((o) => o.need_id === n.id),
      ),
    ),
  };
}

/** A provider's view: open needs of residents in its area, in its categories. No addresses. */
export async function openNeedsFor(db: Executor, ctx: Ctx, providerId: string) {
  const provider = await db
    .selectFrom("providers")
    .select(["status", "categories"])
    .where("id", "=", providerId)
    .executeTakeFirst();
  if (!provider || !(await isProviderAdmin(db, providerId, ctx.actor.userId)))
    throw notFound("the provider");
  if (provider.status !== "verified")
    throw new AppError("forbidden", "only a verified provider sees needs");
  const categories = JSON.parse(provider.categories) as string[];
  const open = await db
    .selectFrom("needs as n")
    .innerJoin("residents as r", "r.id", "n.resident_id")
    .select(["n.id", "n.resident_id", "r.locality"])
    .where("n.status", "=", "open")
    .where("n.expires_at", ">", iso(ctx.now))
    .where("n.category", "in", categories.length ? categories : ["-"])
    .execute();
  const visible: string[] = [];
  for (const n of open)
    if ((await providersServing(db, n.resident_id)).has(providerId)) visible.push(n.id);
  if (visible.length === 0) return { items: [] };
  const rows = await db
    .selectFrom("needs")
    .selectAll()
    .where("id", "in", visible)
    .orderBy("created_at", "desc")
    .execute();
  const localities = new Map(open.map((o) => [o.id, o.locality]));
  return {
    items: rows.map((n) => ({ ...presentNeed(n), locality: localities.get(n.id) ?? null })),
  };
}

export interface NewOffer {
  providerId: string;
  serviceId: string;
  price: number;
  date: string;
  time: string;
  message: string;
}

export async function makeOffer(trx: Trx, ctx: Ctx, needId: string, input: NewOffer) {
  const need = await trx
    .selectFrom("needs")
    .selectAll()
    .where("id", "=", needId)
    .executeTakeFirst();
  if (!need || !(await isProviderAdmin(trx, input.providerId, ctx.actor.userId)))
    throw notFound("the need");
  if (!(await providersServing(trx, need.resident_id)).has(input.providerId))
    throw notFound("the need");
  if (need.status !== "open" || need.expires_at <= iso(ctx.now)) {
    throw new AppError("invalid_state", "this need is no longer open");
  }
  const service = await trx
    .selectFrom("services")
    .select(["id", "active"])
    .where("id", "=", input.serviceId)
    .where("provider_id", "=", input.providerId)
    .executeTakeFirst();
  if (!service?.active) {
    throw new AppError("validation_failed", "offer one of your active services", {
      issues: [{ path: "serviceId", message: "not an active service of this provider" }],
    });
  }
  const offer: OfferRow = {
    id: newId(),
    need_id: needId,
    provider_id: input.providerId,
    service_id: input.serviceId,
    price_minor: input.price,
    visit_date: input.date,
    visit_time: input.time,
    message: input.message,
    status: "pending",
    created_by: ctx.actor.userId,
    created_at: iso(ctx.now),
    decided_at: null,
  };
  const inserted = await trx
    .insertInto("offers")
    .values(offer)
    .onConflict((oc) => oc.columns(["need_id", "provider_id"]).doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
    throw new AppError("already_exists", "this provider has already made an offer on this need");
  }
  return presentOffer(offer);
}

/** The family takes one offer: an accepted booking, money in escrow; the other offers declined. */
export async function acceptOffer(trx: Trx, ctx: Ctx, needId: string, offerId: string) {
  const need = await trx
    .selectFrom("needs")
    .selectAll()
    .where("id", "=", needId)
    .executeTakeFirst();
  if (!need) throw notFound("the need");
  await authorizeResident(trx, ctx.actor, need.resident_id, "book");
  const offer = await trx
    .selectFrom("offers")
    .selectAll()
    .where("id", "=", offerId)
    .where("need_id", "=", needId)
    .executeTakeFirst();
  if (!offer) throw notFound("the offer");
  const taken = await trx
    .updateTable("needs")
    .set({ status: "accepted", accepted_offer_id: offerId, updated_at: iso(ctx.now) })
    .where("id", "=", needId)
    .where("status", "=", "open")
    .executeTakeFirst();
  if (Number(taken.numUpdatedRows) === 0)
    throw new AppError("invalid_state", `this need is already ${need.status}`);
  const booking = await createBooking(trx, ctx, {
    residentId: need.resident_id,
    serviceId: offer.service_id,
    schedule: { type: "once", date: offer.visit_date, time: offer.visit_time },
    notes: need.description,
    offer: { id: offer.id, priceMinor: offer.price_minor },
  });
  await trx.updateTable("needs").set({ booking_id: booking.id }).where("id", "=", needId).execute();
  await trx
    .updateTable("offers")
    .set({ status: "accepted", decided_at: iso(ctx.now) })
    .where("id", "=", offerId)
    .execute();
  await trx
    .updateTable("offers")
    .set({ status: "declined", decided_at: iso(ctx.now) })
    .where("need_id", "=", needId)
    .where("status", "=", "pending")
    .execute();
  return booking;
}

/** A need nobody took closes itself at its expiry; its offers are declined. */
export async function expireNeed(trx: Trx, needId: string, now: Date) {
  const expired = await trx
    .updateTable("needs")
    .set({ status: "expired", updated_at: iso(now) })
    .where("id", "=", needId)
    .where("status", "=", "open")
    .executeTakeFirst();
  if (Number(expired.numUpdatedRows) === 0) return false;
  await trx
    .updateTable("offers")
    .set({ status: "declined", decided_at: iso(now) })
    .where("need_id", "=", needId)
    .where("status", "=", "pending")
    .execute();
  return true;
}
