// Promotions: a provider's admin proposes a discount (a percentage, or a fixed amount off) on
// some of its services for a period of local dates; an operator approves or rejects it, with a
// reason. Only an approved promotion whose period covers a visit's local date prices a booking
// (the best one, when several do); the booking records it, and each visit's escrow says it, so
// the family's wallet statement shows what they were given.
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Executor, Trx } from "../db/database";
import { AppError, forbidden, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { formatMoney } from "../ledger/ledger";
import { tellProvider } from "../notifications/audiences";
import { authorizeProvider } from "../providers/providers.service";
import type { RequestCtx } from "../request-ctx";
import type { PromotionRow, PromotionStatus } from "./reviews.table";

type Ctx = RequestCtx & { actor: Actor };

export function presentPromotion(p: PromotionRow, serviceIds: string[]) {
  return {
    id: p.id,
    providerId: p.provider_id,
    title: p.title,
    percentOff: p.percent_off === null ? null : Number(p.percent_off),
    amountOff: p.amount_off_minor === null ? null : Number(p.amount_off_minor),
    currency: p.currency,
    serviceIds,
    startsOn: p.starts_on,
    endsOn: p.ends_on,
    status: p.status,
    decidedAt: p.decided_at,
    decisionReason: p.decision_reason,
    createdAt: p.created_at,
  };
}

async function servicesOf(db: Executor, promotionIds: string[]) {
  const map = new Map<string, string[]>();
  if (promotionIds.length === 0) return map;
  const rows = await db
    .selectFrom("promotion_services")
    .select(["promotion_id", "service_id"])
    .where("promotion_id", "in", promotionIds)
    .orderBy("service_id")
    .execute();
  for (const r of rows) map.set(r.promotion_id, [...(map.get(r.promotion_id) ?? []), r.service_id]);
  return map;
}

async function presentAll(db: Executor, rows: PromotionRow[]) {
  const services = await servicesOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => presentPromotion(r, services.get(r.id) ?? []));
}

export interface NewPromotion {
  title: string;
  percentOff?: number | undefined;
  amountOff?: number | undefined;
  serviceIds: string[];
  startsOn: string;
  endsOn: string;
}

/** A provider's admin proposes a promotion; it applies once an operator approves it. */
export async function proposePromotion(
  trx: Trx,
  ctx: Ctx,
  providerId: string,
  input: NewPromotion,
) {
  await authorizeProvider(trx, ctx.actor, providerId, "manage");
  if ((input.percentOff === undefined) === (input.amountOff === undefined)) {
    throw new AppError("validation_failed", "give either percentOff or amountOff", {
      issues: [{ path: "percentOff", message: "exactly one of percentOff and amountOff" }],
    });
  }
  if (input.endsOn < input.startsOn) {
    throw new AppError("validation_failed", "the promotion ends before it starts", {
      issues: [{ path: "endsOn", message: "on or after startsOn" }],
    });
  }
  if (input.endsOn < iso(ctx.now).slice(0, 10)) {
    throw new AppError("validation_failed", "the promotion would already be over", {
      issues: [{ path: "endsOn", message: "today or later" }],
    });
  }
  const ids = [...new Set(input.serviceIds)];
  const services = await trx
    .selectFrom("services")
    .select(["id", "price_minor", "currency"])
    .where("provider_id", "=", providerId)
    .where("id", "in", ids)
    .execute();
  const found = new Set(services.map((s) => s.id));
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) {
    throw new AppError("validation_failed", "a promotion covers only this provider's services", {
      issues: missing.map((id) => ({ path: "serviceIds", message: `${id} is not yours` })),
    });
  }
  const currencies = new Set(services.map((s) => s.currency));
  if (currencies.size > 1) {
    throw new AppError("validation_failed", "the services of one promotion share a currency", {
      issues: [{ path: "serviceIds", message: [...currencies].join(", ") }],
    });
  }
  const currency = services[0]!.currency;
  if (input.amountOff !== undefined) {
    const cheapest = Math.min(...services.map((s) => Number(s.price_minor)));
    if (input.amountOff >= cheapest) {
      throw new AppError("validation_failed", "the amount off must be less than the price", {
        issues: [{ path: "amountOff", message: `less than ${formatMoney(cheapest, currency)}` }],
      });
    }
  }
  const row: PromotionRow = {
    id: newId(),
    provider_id: providerId,
    title: input.title,
    percent_off: input.percentOff ?? null,
    amount_off_minor: input.amountOff ?? null,
    currency,
    starts_on: input.startsOn,
    ends_on: input.endsOn,
    status: "proposed",
    proposed_by: ctx.actor.userId,
    decided_by: null,
    decided_at: null,
    decision_reason: null,
    created_at: iso(ctx.now),
    updated_at: iso(ctx.now),
  };
  await trx.insertInto("promotions").values(row).execute();
  await trx
    .insertInto("promotion_services")
    .values(ids.map((service_id) => ({ promotion_id: row.id, service_id })))
    .execute();
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: "promotion.propose",
      entityType: "promotion",
      entityId: row.id,
      requestId: ctx.requestId,
      details: { providerId, serviceIds: ids },
    },
    ctx.now,
  );
  return presentPromotion(row, [...ids].sort());
}

/**
 * A provider's promotions: all of them for its admins and operators; for everyone else the
 * approved ones not yet over.
 */
export async function providerPromotions(
  db: Executor,
  ctx: Ctx,
  providerId: string,
  status?: PromotionStatus | undefined,
) {
  const { relations } = await authorizeProvider(db, ctx.actor, providerId, "view");
  let q = db.selectFrom("promotions").selectAll().where("provider_id", "=", providerId);
  if (relations.length === 0) {
    if (status && status !== "approved") throw forbidden("only approved promotions are public");
    q = q.where("status", "=", "approved").where("ends_on", ">=", iso(ctx.now).slice(0, 10));
  } else if (status) {
    q = q.where("status", "=", status);
  }
  const rows = await q.orderBy("id", "desc").limit(500).execute();
  return { items: await presentAll(db, rows) };
}

/** Every provider's promotions in one state, oldest first (operators: the proposals to decide). */
export async function promotionsForOperator(db: Executor, ctx: Ctx, status: PromotionStatus) {
  if (!ctx.actor.roles.includes("operator")) throw forbidden("this needs the operator role");
  const rows = await db
    .selectFrom("promotions")
    .selectAll()
    .where("status", "=", status)
    .orderBy("id")
    .limit(500)
    .execute();
  return { items: await presentAll(db, rows) };
}

/** An operator approves or rejects a proposed promotion, with a reason. */
export async function decidePromotion(
  trx: Trx,
  ctx: Ctx,
  promotionId: string,
  decision: { approve: boolean; reason: string },
) {
  if (!ctx.actor.roles.includes("operator")) throw forbidden("only operators decide promotions");
  const promotion = await trx
    .selectFrom("promotions")
    .selectAll()
    .where("id", "=", promotionId)
    .executeTakeFirst();
  if (!promotion) throw notFound("the promotion");
  const status: PromotionStatus = decision.approve ? "approved" : "rejected";
  const updated = await trx
    .updateTable("promotions")
    .set({
      status,
      decided_by: ctx.actor.userId,
      decided_at: iso(ctx.now),
      decision_reason: decision.reason,
      updated_at: iso(ctx.now),
    })
    .where("id", "=", promotionId)
    .where("status", "=", "proposed")
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) {
    throw new AppError("invalid_state", `this promotion was already ${promotion.status}`);
  }
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: decision.approve ? "promotion.approve" : "promotion.reject",
      entityType: "promotion",
      entityId: promotionId,
      requestId: ctx.requestId,
      details: { providerId: promotion.provider_id },
    },
    ctx.now,
  );
  // The provider's admins hear the answer (and the reason) without having to look.
  await tellProvider(
    trx,
    promotion.provider_id,
    {
      purpose: "promotion_decided",
      message: {
        t: "promotion_decided",
        title: promotion.title,
        approved: decision.approve,
        reason: decision.reason,
      },
      dedupeKey: `promotion-decided:${promotionId}`,
      channels: ["push"],
    },
    ctx.now,
  );
  const row = await trx
    .selectFrom("promotions")
    .selectAll()
    .where("id", "=", promotionId)
    .executeTakeFirstOrThrow();
  return (await presentAll(trx, [row]))[0]!;
}

/** A promotion as it priced one visit. */
export interface AppliedPromotion {
  promotionId: string;
  title: string;
  /** "20% off (Spring offer)", "CNY 20.00 off (Spring offer)". */
  label: string;
  fullPriceMinor: number;
  discountMinor: number;
  priceMinor: number;
}

function labelOf(p: PromotionRow) {
  const off =
    p.percent_off !== null
      ? `${Number(p.percent_off)}% off`
      : `${formatMoney(Number(p.amount_off_minor), p.currency)} off`;
  return `${off} (${p.title})`;
}

/**
 * The best approved promotion on the service whose period covers the local date, applied to a
 * visit's full price; null when none does. A fixed amount never takes the price below zero.
 */
export async function promotionFor(
  db: Executor,
  serviceId: string,
  localDate: string,
  fullPriceMinor: number,
): Promise<AppliedPromotion | null> {
  const candidates = await db
    .selectFrom("promotions as p")
    .innerJoin("promotion_services as ps", "ps.promotion_id", "p.id")
    .innerJoin("services as s", "s.id", "ps.service_id")
    .selectAll("p")
    .where("ps.service_id", "=", serviceId)
    .where("p.status", "=", "approved")
    .where("p.starts_on", "<=", localDate)
    .where("p.ends_on", ">=", localDate)
    .whereRef("p.currency", "=", "s.currency")
    .orderBy("p.id")
    .execute();
  let best: AppliedPromotion | null = null;
  for (const p of candidates) {
    const discount = Math.min(
      fullPriceMinor,
      p.percent_off !== null
        ? Math.round((fullPriceMinor * Number(p.percent_off)) / 100)
        : Number(p.amount_off_minor),
    );
    if (discount <= 0 || (best && best.discountMinor >= discount)) continue;
    best = {
      promotionId: p.id,
      title: p.title,
      label: labelOf(p),
      fullPriceMinor,
      discountMinor: discount,
      priceMinor: fullPriceMinor - discount,
    };
  }
  return best;
}

/** Records the promotion a booking was priced with (its visits' escrow will name it). */
export async function recordBookingPromotion(
  trx: Trx,
  bookingId: string,
  applied: AppliedPromotion,
  now: Date,
) {
  await trx
    .insertInto("booking_promotions")
    .values({
      booking_id: bookingId,
      promotion_id: applied.promotionId,
      full_price_minor: applied.fullPriceMinor,
      discount_minor: applied.discountMinor,
      label: applied.label,
      created_at: iso(now),
    })
    .execute();
  return presentApplied(applied);
}

export function presentApplied(a: AppliedPromotion) {
  return {
    id: a.promotionId,
    title: a.title,
    label: a.label,
    fullPrice: a.fullPriceMinor,
    discount: a.discountMinor,
  };
}

/** The promotion a booking was priced with, as the booking's answer shows it; null if none. */
export async function bookingPromotion(db: Executor, bookingId: string) {
  const row = await db
    .selectFrom("booking_promotions as bp")
    .innerJoin("promotions as p", "p.id", "bp.promotion_id")
    .select(["bp.promotion_id", "p.title", "bp.label", "bp.full_price_minor", "bp.discount_minor"])
    .where("bp.booking_id", "=", bookingId)
    .executeTakeFirst();
  return row
    ? presentApplied({
        promotionId: row.promotion_id,
        title: row.title,
        label: row.label,
        fullPriceMinor: Number(row.full_price_minor),
        discountMinor: Number(row.discount_minor),
        priceMinor: Number(row.full_price_minor) - Number(row.discount_minor),
      })
    : null;
}

/** What a visit's escrow line adds when its booking had a promotion: " with 20% off (Spring offer)". */
export async function escrowNote(db: Executor, bookingId: string): Promise<string> {
  const row = await db
    .selectFrom("booking_promotions")
    .select("label")
    .where("booking_id", "=", bookingId)
    .executeTakeFirst();
  return row ? ` with ${row.label}` : "";
}
