// Bookings and their visits, and the money that follows them. Each visit's price moves from the
// wallet into its own escrow account when the visit is created (a long series never locks
// months of money); the provider accepts or declines within a deadline (silence declines); a
// cancel refunds in full in time and charges a fee later; a verified visit opens the family's
// review window, whose end (or the family's confirmation) releases the money to the provider,
// less the platform's commission; a dispute freezes it until an operator decides.
import { authorizeResident } from "../access/access";
import { closeAlert, findOpenAlert } from "../alerts/alerts.service";
import { recordAudit } from "../audit/audit.service";
import { addMs, iso } from "../clock";
import type { Db, Executor, Trx } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { insertJob } from "../jobs/jobs.repository";
import { accounts, formatMoney, post } from "../ledger/ledger";
import { walletCurrency } from "../ledger/wallet.service";
import { personForUser, queueMessage } from "../notifications/queue";
import { isProviderAdmin } from "../providers/providers.repository";
import type { RequestCtx } from "../request-ctx";
import {
  bookingPromotion,
  escrowNote,
  promotionFor,
  recordBookingPromotion,
} from "../reviews/promotions.service";
import { getSettings, type Settings } from "../settings/settings.service";
import { localParts } from "../time";
import { assignFromSeries, loadVisit } from "../visits/visits.service";
import { scheduleVisitWatch } from "../visits/watch-schedule";
import type { BookingRow, VisitRow } from "./bookings.table";
import { addDays, lastDate, occurrences, type Schedule, ScheduleSchema } from "./schedule";

type Ctx = RequestCtx & { actor: Actor };

export const ACCEPT_DEADLINE_JOB = "bookings.accept_deadline";
export const RELEASE_JOB = "visits.release";

/** The price of one visit, computed by the server from the catalog. */
export function visitPrice(service: {
  price_minor: number;
  unit: string;
  duration_minutes: number;
}) {
  if (service.unit === "per_hour")
    return Math.round((service.price_minor * service.duration_minutes) / 60);
  return service.price_minor;
}

function percentOf(amount: number, percent: number): number {
  return Math.round((amount * percent) / 100);
}

export function presentVisit(v: VisitRow) {
  return {
    id: v.id,
    bookingId: v.booking_id,
    residentId: v.resident_id,
    providerId: v.provider_id,
    serviceId: v.service_id,
    workerId: v.worker_id,
    startsAt: v.starts_at,
    endsAt: v.ends_at,
    localDate: v.local_date,
    localTime: v.local_time,
    status: v.status,
    price: Number(v.price_minor),
    currency: v.currency,
    verifiedAt: v.verified_at,
    reviewUntil: v.review_until,
    disputeReason: v.dispute_reason,
    cancelledAt: v.cancelled_at,
    cancelReason: v.cancel_reason,
  };
}

export function presentBooking(b: BookingRow, visits: VisitRow[]) {
  return {
    id: b.id,
    residentId: b.resident_id,
    serviceId: b.service_id,
    providerId: b.provider_id,
    bookedBy: b.booked_by,
    status: b.status,
    schedule: JSON.parse(b.schedule) as Schedule,
    timeZone: b.time_zone,
    visitPrice: Number(b.visit_price_minor),
    currency: b.currency,
    durationMinutes: b.duration_minutes,
    notes: b.notes,
    acceptBy: b.accept_by,
    declineReason: b.decline_reason,
    createdAt: b.created_at,
    visits: visits.map(presentVisit),
  };
}

/** Creates one visit and escrows its price; throws insufficient_funds (moving nothing) if short. */
async function createVisit(
  trx: Trx,
  booking: BookingRow,
  occ: ReturnType<typeof occurrences>[number],
  by: string | null,
  now: Date,
): Promise<VisitRow | null> {
  const visit: VisitRow = {
    id: newId(),
    booking_id: booking.id,
    resident_id: booking.resident_id,
    provider_id: booking.provider_id,
    service_id: booking.service_id,
    worker_id: null,
    starts_at: iso(occ.startsAt),
    ends_at: iso(occ.endsAt),
    local_date: occ.localDate,
    local_time: occ.localTime,
    status: "scheduled",
    price_minor: booking.visit_price_minor,
    currency: booking.currency,
    verified_at: null,
    review_until: null,
    dispute_reason: null,
    settled_at: null,
    cancelled_at: null,
    cancelled_by: null,
    cancel_reason: null,
    created_at: iso(now),
    updated_at: iso(now),
    assigned_at: null,
    assigned_by: null,
    plan_version: null,
    checked_in_at: null,
    checked_out_at: null,
    late_at: null,
    missed_at: null,
    open_alerted_at: null,
  };
  const inserted = await trx
    .insertInto("visits")
    .values(visit)
    .onConflict((oc) => oc.columns(["booking_id", "starts_at"]).doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return null;
  await scheduleVisitWatch(trx, visit, now);
  if (booking.worker_id) await assignFromSeries(trx, visit, booking.worker_id, now);
  await post(
    trx,
    {
      kind: "visit_escrow",
      description: `Visit on ${occ.localDate} ${occ.localTime} held in escrow${await escrowNote(trx, booking.id)}`,
      currency: booking.currency,
      residentId: booking.resident_id,
      reference: { type: "visit", id: visit.id },
      createdBy: by,
      entries: [
        { account: accounts.wallet(booking.resident_id), amount: -booking.visit_price_minor },
        { account: accounts.escrow(visit.id), amount: booking.visit_price_minor },
      ],
    },
    now,
  );
  return visit;
}

export interface NewBooking {
  residentId: string;
  serviceId: string;
  schedule: Schedule;
  notes?: string | undefined;
  /** Booked by accepting a provider's offer on a need: its price, and already accepted. */
  offer?: { id: string; priceMinor: number } | undefined;
}

export async function createBooking(trx: Trx, ctx: Ctx, input: NewBooking) {
  await authorizeResident(trx, ctx.actor, input.residentId, "book");
  const schedule = ScheduleSchema.parse(input.schedule);
  const resident = await trx
    .selectFrom("residents")
    .select(["time_zone", "status"])
    .where("id", "=", input.residentId)
    .executeTakeFirstOrThrow();
  const service = await trx
    .selectFrom("services as s")
    .innerJoin("providers as p", "p.id", "s.provider_id")
    .select([
      "s.id",
      "s.provider_id",
      "s.price_minor",
      "s.currency",
      "s.unit",
      "s.duration_minutes",
      "s.min_notice_hours",
      "s.active",
      "p.status as provider_status",
    ])
    .where("s.id", "=", input.serviceId)
    .executeTakeFirst();
  if (!service?.active || service.provider_status !== "verified") {
    throw notFound("the service");
  }
  const currency = await walletCurrency(trx);
  if (service.currency !== currency) {
    throw new AppError(
      "invalid_state",
      `this service is priced in ${service.currency}, wallets hold ${currency}`,
    );
  }
  const settings = await getSettings(trx);
  const today = localParts(ctx.now, resident.time_zone).date;
  const through =
    schedule.type === "once" ? schedule.date : addDays(today, settings["bookings.window_days"]);
  const planned = occurrences(
    schedule,
    resident.time_zone,
    service.duration_minutes,
    today,
    through,
  );
  const first = planned[0];
  if (!first) {
    throw new AppError("validation_failed", "this schedule has no visit ahead", {
      issues: [{ path: "schedule", message: "no occurrence from today on" }],
    });
  }
  const earliest = addMs(ctx.now, service.min_notice_hours * 3_600_000);
  if (first.startsAt < earliest) {
    throw new AppError(
      "validation_failed",
      `this service needs ${service.min_notice_hours} hours' notice: the first visit must start after ${iso(earliest)}`,
      { issues: [{ path: "schedule", message: "too soon" }] },
    );
  }
  const acceptBy = new Date(
    Math.min(
      addMs(ctx.now, settings["bookings.accept_hours"] * 3_600_000).getTime(),
      first.startsAt.getTime(),
    ),
  );
  // An approved promotion covering the first visit's date prices the booking (not an offer's).
  const promotion = input.offer
    ? null
    : await promotionFor(trx, service.id, first.localDate, visitPrice(service));
  const booking: BookingRow = {
    id: newId(),
    resident_id: input.residentId,
    service_id: service.id,
    provider_id: service.provider_id,
    booked_by: ctx.actor.userId,
    status: input.offer ? "accepted" : "pending",
    schedule: JSON.stringify(schedule),
    time_zone: resident.time_zone,
    visit_price_minor: input.offer?.priceMinor ?? promotion?.priceMinor ?? visitPrice(service),
    currency,
    duration_minutes: service.duration_minutes,
    notes: input.notes ?? null,
    accept_by: iso(acceptBy),
    decided_at: input.offer ? iso(ctx.now) : null,
    decided_by: null,
    decline_reason: null,
    // Dates as YYYY-MM-DD compare as text.
    generated_through: [through, lastDate(schedule)].sort()[0]!,
    worker_id: null,
    created_at: iso(ctx.now),
    updated_at: iso(ctx.now),
  };
  await trx.insertInto("bookings").values(booking).execute();
  const applied = promotion && (await recordBookingPromotion(trx, booking.id, promotion, ctx.now));
  const visits: VisitRow[] = [];
  for (const occ of planned) {
    if (occ.startsAt < earliest) continue;
    const v = await createVisit(trx, booking, occ, ctx.actor.userId, ctx.now);
    if (v) visits.push(v);
  }
  if (!input.offer)
    await insertJob(
      trx,
      {
        kind: ACCEPT_DEADLINE_JOB,
        payload: { bookingId: booking.id },
        runAt: acceptBy,
        maxAttempts: 1_000_000,
        dedupeKey: `booking-accept:${booking.id}`,
      },
      ctx.now,
    );
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: "booking.create",
      entityType: "booking",
      entityId: booking.id,
      residentId: booking.resident_id,
      requestId: ctx.requestId,
    },
    ctx.now,
  );
  return { ...presentBooking(booking, visits), ...(applied ? { promotion: applied } : {}) };
}

async function loadBooking(db: Executor, bookingId: string) {
  const booking = await db
    .selectFrom("bookings")
    .selectAll()
    .where("id", "=", bookingId)
    .executeTakeFirst();
  if (!booking) throw notFound("the booking");
  return booking;
}

async function visitsOf(db: Executor, bookingId: string) {
  return db
    .selectFrom("visits")
    .selectAll()
    .where("booking_id", "=", bookingId)
    .orderBy("starts_at")
    .execute();
}

/** Who may see a booking: its resident's circle, its provider's admins, operators. */
async function authorizeBooking(
  db: Executor,
  actor: Actor,
  booking: BookingRow,
  as: "family" | "provider" | "any",
) {
  if (actor.roles.includes("operator")) return;
  const admin = await isProviderAdmin(db, booking.provider_id, actor.userId);
  if (as === "provider") {
    if (admin) return;
    // Family may see the booking but not act as its provider; strangers learn nothing.
    await authorizeResident(db, actor, booking.resident_id, "view");
    throw new AppError("forbidden", "only the provider's admins can answer a booking");
  }
  if (as === "any" && admin) return;
  await authorizeResident(db, actor, booking.resident_id, as === "family" ? "book" : "view");
}

export async function getBooking(db: Executor, ctx: Ctx, bookingId: string) {
  const booking = await loadBooking(db, bookingId);
  await authorizeBooking(db, ctx.actor, booking, "any");
  const promotion = await bookingPromotion(db, bookingId);
  return {
    ...presentBooking(booking, await visitsOf(db, bookingId)),
    ...(promotion ? { promotion } : {}),
  };
}

export async function listBookings(
  db: Executor,
  ctx: Ctx,
  q: {
    residentId?: string | undefined;
    providerId?: string | undefined;
    status?: string | undefined;
  },
) {
  let query = db.selectFrom("bookings").selectAll();
  if (q.residentId) {
    await authorizeResident(db, ctx.actor, q.residentId, "view");
    query = query.where("resident_id", "=", q.residentId);
  } else if (q.providerId) {
    if (
      !ctx.actor.roles.includes("operator") &&
      !(await isProviderAdmin(db, q.providerId, ctx.actor.userId))
    ) {
      throw notFound("the provider");
    }
    query = query.where("provider_id", "=", q.providerId);
  } else if (!ctx.actor.roles.includes("operator")) {
    throw new AppError("bad_request", "name a residentId or a providerId");
  }
  if (q.status) query = query.where("status", "=", q.status as BookingRow["status"]);
  const rows = await query.orderBy("created_at", "desc").limit(200).execute();
  return { items: rows.map((b) => presentBooking(b, [])) };
}

/** Moves a visit's escrow back to the wallet (all of it, or all but a fee to the provider). */
async function refundVisit(
  trx: Trx,
  visit: VisitRow,
  fee: number,
  why: string,
  by: string | null,
  now: Date,
  settings: Settings,
) {
  const commission = percentOf(fee, settings["marketplace.commission_percent"]);
  const entries = [
    { account: accounts.escrow(visit.id), amount: -visit.price_minor },
    { account: accounts.wallet(visit.resident_id), amount: visit.price_minor - fee },
  ];
  if (fee > 0) {
    entries.push({ account: accounts.payable(visit.provider_id), amount: fee - commission });
    if (commission > 0) entries.push({ account: accounts.revenue(), amount: commission });
  }
  await post(
    trx,
    {
      kind: fee > 0 ? "visit_late_cancel" : "visit_refund",
      description: why,
      currency: visit.currency,
      residentId: visit.resident_id,
      reference: { type: "visit", id: visit.id },
      createdBy: by,
      entries,
    },
    now,
  );
}

async function cancelVisitRow(
  trx: Trx,
  visit: VisitRow,
  opts: { fee: number; reason: string; by: string | null; status: "cancelled" | "refunded" },
  now: Date,
  settings: Settings,
) {
  const updated = await trx
    .updateTable("visits")
    .set({
      status: opts.status,
      cancelled_at: iso(now),
      cancelled_by: opts.by,
      cancel_reason: opts.reason,
      settled_at: iso(now),
      updated_at: iso(now),
    })
    .where("id", "=", visit.id)
    .where("status", "=", "scheduled")
    // A worker already in the home: the visit is happening, nobody cancels it from afar.
    .where("checked_in_at", "is", null)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return false;
  await refundVisit(trx, visit, opts.fee, opts.reason, opts.by, now, settings);
  return true;
}

/** The provider declines (or its silence does): every visit refunded in full. */
async function decline(
  trx: Trx,
  booking: BookingRow,
  reason: string,
  by: string | null,
  now: Date,
) {
  const settings = await getSettings(trx);
  await trx
    .updateTable("bookings")
    .set({
      status: "declined",
      decided_at: iso(now),
      decided_by: by,
      decline_reason: reason,
      updated_at: iso(now),
    })
    .where("id", "=", booking.id)
    .execute();
  for (const v of await visitsOf(trx, booking.id)) {
    await cancelVisitRow(
      trx,
      v,
      { fee: 0, reason: `Declined: ${reason}`, by, status: "refunded" },
      now,
      settings,
    );
  }
}

export async function answerBooking(
  trx: Trx,
  ctx: Ctx,
  bookingId: string,
  answer: { accept: boolean; reason?: string | undefined },
) {
  const booking = await loadBooking(trx, bookingId);
  await authorizeBooking(trx, ctx.actor, booking, "provider");
  if (booking.status !== "pending")
    throw new AppError("invalid_state", `this booking is already ${booking.status}`);
  if (iso(ctx.now) > booking.accept_by) {
    throw new AppError("invalid_state", "the time to answer this booking has passed");
  }
  if (answer.accept) {
    await trx
      .updateTable("bookings")
      .set({
        status: "accepted",
        decided_at: iso(ctx.now),
        decided_by: ctx.actor.userId,
        updated_at: iso(ctx.now),
      })
      .where("id", "=", bookingId)
      .execute();
  } else {
    await decline(
      trx,
      booking,
      answer.reason ?? "declined by the provider",
      ctx.actor.userId,
      ctx.now,
    );
  }
  return presentBooking(await loadBooking(trx, bookingId), await visitsOf(trx, bookingId));
}

/** The acceptance deadline passed: a booking still unanswered declines itself and refunds. */
export async function acceptanceDeadline(trx: Trx, bookingId: string, now: Date) {
  const booking = await loadBooking(trx, bookingId);
  if (booking.status !== "pending") return false;
  await decline(trx, booking, "the provider did not answer in time", null, now);
  return true;
}

/** The family cancels one visit, or every visit from one on (the rest of a series). */
export async function cancelVisits(
  trx: Trx,
  ctx: Ctx,
  input: { bookingId: string; visitId?: string | undefined; reason: string },
) {
  const booking = await loadBooking(trx, input.bookingId);
  await authorizeBooking(trx, ctx.actor, booking, "family");
  const settings = await getSettings(trx);
  const all = await visitsOf(trx, booking.id);
  const from = input.visitId ? all.find((v) => v.id === input.visitId) : undefined;
  if (input.visitId && !from) throw notFound("the visit");
  const targets = input.visitId
    ? [from!]
    : all.filter((v) => v.status === "scheduled" && !v.checked_in_at);
  if (targets.some((v) => v.status !== "scheduled")) {
    throw new AppError("invalid_state", "only a visit still ahead can be cancelled");
  }
  if (targets.some((v) => v.checked_in_at)) {
    throw new AppError("invalid_state", "the worker has already checked in to this visit");
  }
  const freeUntil = (v: VisitRow) =>
    Date.parse(v.starts_at) - settings["bookings.free_cancel_hours"] * 3_600_000;
  const results = [];
  for (const v of targets) {
    const late = ctx.now.getTime() > freeUntil(v);
    const fee = late ? percentOf(v.price_minor, settings["bookings.late_cancel_fee_percent"]) : 0;
    await cancelVisitRow(
      trx,
      v,
      {
        fee,
        reason: late
          ? `Cancelled late by the family: ${input.reason}`
          : `Cancelled by the family: ${input.reason}`,
        by: ctx.actor.userId,
        status: "cancelled",
      },
      ctx.now,
      settings,
    );
    results.push({ visitId: v.id, refunded: v.price_minor - fee, fee });
  }
  if (!input.visitId) {
    await trx
      .updateTable("bookings")
      .set({ status: "cancelled", updated_at: iso(ctx.now) })
      .where("id", "=", booking.id)
      .execute();
  }
  return { bookingId: booking.id, cancelled: results };
}

/** The provider cancels a visit, or did not come (an operator records it): full refund, a mark. */
export async function providerFailed(
  trx: Trx,
  ctx: Ctx,
  visitId: string,
  kind: "cancelled" | "no_show",
  reason: string,
) {
  const visit = await loadVisit(trx, visitId);
  const booking = await loadBooking(trx, visit.booking_id);
  if (kind === "no_show" && !ctx.actor.roles.includes("operator")) {
    throw new AppError("forbidden", "an operator records that a provider did not come");
  }
  if (kind === "cancelled") await authorizeBooking(trx, ctx.actor, booking, "provider");
  const reasonText =
    kind === "no_show"
      ? `The provider did not come: ${reason}`
      : `Cancelled by the provider: ${reason}`;
  if (!(await refundProviderFault(trx, visit, reasonText, ctx.actor.userId, ctx.now))) {
    throw new AppError("invalid_state", `this visit is already ${visit.status}`);
  }
  return presentVisit({ ...visit, status: "refunded" });
}

/** The provider's fault (a cancel, a no-show, a missed visit): all back, a mark on its record. */
async function refundProviderFault(
  trx: Trx,
  visit: VisitRow,
  reason: string,
  by: string | null,
  now: Date,
) {
  const settings = await getSettings(trx);
  const done = await cancelVisitRow(
    trx,
    visit,
    { fee: 0, reason, by, status: "refunded" },
    now,
    settings,
  );
  if (!done) return false;
  await trx
    .updateTable("providers")
    .set((eb) => ({ no_show_count: eb("no_show_count", "+", 1) }))
    .where("id", "=", visit.provider_id)
    .execute();
  return true;
}

/**
 * Nobody came (the visit watch marked it missed and no one checked in): the family, or an
 * operator, takes the money back in full, or the watch does at the end of the open-visit check.
 * It counts against the provider like a no-show.
 */
export async function refundMissedVisit(
  trx: Trx,
  visitId: string,
  /** The family member or operator asking; null when the watch refunds it. */
  ctx: Ctx | null,
  now: Date,
) {
  const visit = await loadVisit(trx, visitId);
  if (ctx && !ctx.actor.roles.includes("operator")) {
    await authorizeResident(trx, ctx.actor, visit.resident_id, "book");
  }
  if (visit.status !== "scheduled" || !visit.missed_at || visit.checked_in_at) {
    throw new AppError(
      "invalid_state",
      visit.checked_in_at
        ? "a worker checked in to this visit: it was not missed"
        : visit.missed_at
          ? `this visit is already ${visit.status}`
          : "this visit has not been missed",
    );
  }
  const done = await refundProviderFault(
    trx,
    visit,
    "Missed: nobody checked in to the visit",
    ctx?.actor.userId ?? null,
    now,
  );
  // A concurrent claim, the watch's own refund or a late check-in got there first.
  if (!done) throw new AppError("invalid_state", "this visit was settled or checked in meanwhile");
  // The money is back and nobody is coming: the late and missed alerts have nothing to chase.
  for (const key of [`visit-late:${visit.id}`, `visit-missed:${visit.id}`]) {
    const open = await findOpenAlert(trx, visit.resident_id, key);
    if (open)
      await closeAlert(trx, open, "resolved", "refunded: nobody came", now, ctx?.actor.userId);
  }
  return presentVisit({ ...visit, status: "refunded" });
}

/**
 * The visit happened and was proven (the visits issue calls this at check-out): the family's
 * review window opens, and its end releases the money.
 */
export async function markVisitVerified(trx: Trx, visitId: string, now: Date) {
  const settings = await getSettings(trx);
  const reviewUntil = addMs(now, settings["bookings.review_hours"] * 3_600_000);
  const updated = await trx
    .updateTable("visits")
    .set({
      status: "verified",
      verified_at: iso(now),
      review_until: iso(reviewUntil),
      updated_at: iso(now),
    })
    .where("id", "=", visitId)
    .where("status", "=", "scheduled")
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0)
    throw new AppError("invalid_state", "only a scheduled visit can be verified");
  await insertJob(
    trx,
    {
      kind: RELEASE_JOB,
      payload: { visitId },
      runAt: reviewUntil,
      maxAttempts: 1_000_000,
      dedupeKey: `visit-release:${visitId}`,
    },
    now,
  );
}

/** Escrow to the provider's payable, less the commission. */
async function release(
  trx: Trx,
  visit: VisitRow,
  amount: number,
  by: string | null,
  why: string,
  now: Date,
  settings: Settings,
) {
  const commission = percentOf(amount, settings["marketplace.commission_percent"]);
  const refund = visit.price_minor - amount;
  const entries = [
    { account: accounts.escrow(visit.id), amount: -visit.price_minor },
    { account: accounts.payable(visit.provider_id), amount: amount - commission },
  ];
  if (commission > 0) entries.push({ account: accounts.revenue(), amount: commission });
  if (refund > 0) entries.push({ account: accounts.wallet(visit.resident_id), amount: refund });
  await post(
    trx,
    {
      kind: refund > 0 ? (amount > 0 ? "visit_split" : "visit_refund") : "visit_release",
      description: why,
      currency: visit.currency,
      residentId: visit.resident_id,
      reference: { type: "visit", id: visit.id },
      createdBy: by,
      entries,
    },
    now,
  );
}

/** The review window ended (a job) or the family confirmed: the provider is paid. */
export async function releaseVisit(trx: Trx, visitId: string, by: string | null, now: Date) {
  const visit = await trx
    .selectFrom("visits")
    .selectAll()
    .where("id", "=", visitId)
    .executeTakeFirst();
  if (visit?.status !== "verified") return false;
  const settings = await getSettings(trx);
  await trx
    .updateTable("visits")
    .set({ status: "released", settled_at: iso(now), updated_at: iso(now) })
    .where("id", "=", visitId)
    .where("status", "=", "verified")
    .execute();
  await release(
    trx,
    visit,
    visit.price_minor,
    by,
    by ? "Confirmed by the family" : "Review window ended",
    now,
    settings,
  );
  return true;
}

export async function reviewVisit(
  trx: Trx,
  ctx: Ctx,
  visitId: string,
  review: { confirm: true } | { dispute: string },
) {
  const visit = await loadVisit(trx, visitId);
  await authorizeResident(trx, ctx.actor, visit.resident_id, "book");
  if (visit.status !== "verified" || !visit.review_until || iso(ctx.now) > visit.review_until) {
    throw new AppError("invalid_state", "this visit is not waiting for your review");
  }
  if ("confirm" in review) {
    await releaseVisit(trx, visitId, ctx.actor.userId, ctx.now);
  } else {
    await trx
      .updateTable("visits")
      .set({ status: "disputed", dispute_reason: review.dispute, updated_at: iso(ctx.now) })
      .where("id", "=", visitId)
      .execute();
  }
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: "confirm" in review ? "visit.confirm" : "visit.dispute",
      entityType: "visit",
      entityId: visitId,
      residentId: visit.resident_id,
      requestId: ctx.requestId,
    },
    ctx.now,
  );
  return presentVisit(
    await trx.selectFrom("visits").selectAll().where("id", "=", visitId).executeTakeFirstOrThrow(),
  );
}

/** An operator settles a dispute: all to the provider, all back to the family, or a split. */
export async function decideDispute(
  trx: Trx,
  ctx: Ctx,
  visitId: string,
  decision: { outcome: "release" | "refund" | "split"; refund?: number | undefined; note: string },
) {
  const visit = await loadVisit(trx, visitId);
  if (visit.status !== "disputed")
    throw new AppError("invalid_state", "this visit is not in dispute");
  const refund =
    decision.outcome === "release"
      ? 0
      : decision.outcome === "refund"
        ? visit.price_minor
        : (decision.refund ?? -1);
  if (refund < 0 || refund > visit.price_minor) {
    throw new AppError(
      "validation_failed",
      "a split names the refund, between 0 and the visit's price",
      {
        issues: [{ path: "refund", message: `0 to ${visit.price_minor}` }],
      },
    );
  }
  const settings = await getSettings(trx);
  const status = refund === visit.price_minor ? "refunded" : "released";
  await trx
    .updateTable("visits")
    .set({ status, settled_at: iso(ctx.now), updated_at: iso(ctx.now) })
    .where("id", "=", visitId)
    .execute();
  await release(
    trx,
    visit,
    visit.price_minor - refund,
    ctx.actor.userId,
    `Dispute decided (${decision.outcome}): ${decision.note}`,
    ctx.now,
    settings,
  );
  await tellBothSides(trx, visit, decision.outcome, refund, decision.note, ctx.now);
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: "visit.dispute.decide",
      entityType: "visit",
      entityId: visitId,
      residentId: visit.resident_id,
      requestId: ctx.requestId,
      details: { outcome: decision.outcome, refund },
    },
    ctx.now,
  );
  return presentVisit({ ...visit, status });
}

/** An operator records a payout to the provider: its payable moves to the outside world. */
export async function recordPayout(
  trx: Trx,
  ctx: Ctx,
  providerId: string,
  amount: number,
  reference: string,
) {
  const provider = await trx
    .selectFrom("providers")
    .select("id")
    .where("id", "=", providerId)
    .executeTakeFirst();
  if (!provider) throw notFound("the provider");
  const txId = await post(
    trx,
    {
      kind: "provider_payout",
      description: `Payout to the provider (${reference})`,
      currency: await walletCurrency(trx),
      reference: { type: "provider", id: providerId },
      createdBy: ctx.actor.userId,
      entries: [
        { account: accounts.payable(providerId), amount: -amount },
        { account: accounts.outside(), amount },
      ],
    },
    ctx.now,
  );
  return { transactionId: txId, providerId, amount };
}

/**
 * Rolls every live series forward: visits (and their escrow) up to the window ahead, each in its
 * own transaction. When the wallet cannot cover the next visit the series waits, and the family
 * is told (once a day) so they can top up before the visit is missed.
 */
export async function rollSeries(
  db: Db,
  now: Date,
  onShort: (booking: BookingRow, needed: number) => Promise<void>,
) {
  const settings = await getSettings(db);
  const live = await db
    .selectFrom("bookings")
    .selectAll()
    .where("status", "in", ["pending", "accepted"])
    .where("schedule", "like", '%"weekly"%')
    .execute();
  let created = 0;
  for (const booking of live) {
    const schedule = ScheduleSchema.parse(JSON.parse(booking.schedule));
    const today = localParts(now, booking.time_zone).date;
    const through = addDays(today, settings["bookings.window_days"]);
    const from = booking.generated_through ? addDays(booking.generated_through, 1) : today;
    if (from > lastDate(schedule) || from > through) continue;
    for (const occ of occurrences(
      schedule,
      booking.time_zone,
      booking.duration_minutes,
      from,
      through,
    )) {
      if (occ.startsAt <= now) continue;
      try {
        await db.transaction().execute(async (trx) => {
          if (await createVisit(trx, booking, occ, null, now)) created += 1;
          await trx
            .updateTable("bookings")
            .set({ generated_through: occ.localDate, updated_at: iso(now) })
            .where("id", "=", booking.id)
            .execute();
        });
      } catch (error) {
        if (error instanceof AppError && error.code === "insufficient_funds") {
          await onShort(booking, booking.visit_price_minor);
          break;
        }
        throw error;
      }
    }
  }
  return created;
}

/** The resident is away (paused): visits on the days away are cancelled with a full refund. */
export async function cancelVisitsWhileAway(
  trx: Trx,
  residentId: string,
  away: { from: string; until: string | null },
  by: string | null,
  now: Date,
) {
  let q = trx
    .selectFrom("visits")
    .selectAll()
    .where("resident_id", "=", residentId)
    .where("status", "=", "scheduled")
    .where("local_date", ">=", away.from)
    .where("starts_at", ">", iso(now));
  if (away.until) q = q.where("local_date", "<", away.until);
  const settings = await getSettings(trx);
  let cancelled = 0;
  for (const v of await q.execute()) {
    const done = await cancelVisitRow(
      trx,
      v,
      {
        fee: 0,
        reason: "The resident is away: cancelled with a full refund",
        by,
        status: "cancelled",
      },
      now,
      settings,
    );
    if (done) cancelled += 1;
  }
  return cancelled;
}

/** The family's primaries and the provider's admins hear how a dispute was decided. */
async function tellBothSides(
  trx: Trx,
  visit: VisitRow,
  outcome: "release" | "refund" | "split",
  refund: number,
  note: string,
  now: Date,
) {
  const resident = await trx
    .selectFrom("residents")
    .select(["full_name", "preferred_name"])
    .where("id", "=", visit.resident_id)
    .executeTakeFirstOrThrow();
  const family = await trx
    .selectFrom("circle_members")
    .select("user_id")
    .where("resident_id", "=", visit.resident_id)
    .where("level", "=", "primary")
    .execute();
  const admins = await trx
    .selectFrom("provider_admins")
    .select("user_id")
    .where("provider_id", "=", visit.provider_id)
    .execute();
  const settings = await getSettings(trx);
  for (const { user_id } of [...family, ...admins]) {
    const person = await personForUser(trx, user_id);
    if (!person) continue;
    await queueMessage(
      trx,
      person,
      {
        purpose: "dispute_decided",
        message: {
          t: "dispute_decided",
          residentName: resident.preferred_name ?? resident.full_name,
          visitDate: visit.local_date,
          outcome,
          refund: formatMoney(refund, visit.currency),
          note,
        },
        channels: ["push", "sms"],
        dedupeKey: `dispute:${visit.id}`,
        requireConfirmedPhone: true,
      },
      now,
      settings,
    );
  }
}
