// Care visits: who may see and act on a visit, the provider assigning its worker, the worker's
// day, the access notes revealed only inside a checked-in visit, and the one-time codes that
// prove a worker is at the door (shown by the home device, or confirmed by the family).
import { createHash, randomInt, timingSafeEqual } from "node:crypto";
import { authorizeResident, relationsTo } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import type { VisitRow } from "../bookings/bookings.table";
import { currentPlan, planVersion } from "../careplans/careplans.service";
import { addMs, iso } from "../clock";
import type { Db, Executor, Trx } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { insertJob } from "../jobs/jobs.repository";
import { isPostgres } from "../ledger/ledger";
import { tellFamily, tellWorker } from "../notifications/audiences";
import { assignableWorker } from "../providers/workers.service";
import type { RequestCtx } from "../request-ctx";
import type { ResidentRow } from "../residents/residents.table";
import { getSettings } from "../settings/settings.service";
import { localParts } from "../time";
import { type DueItem, dueItems, itemKey } from "./due";
import type { VisitEntryRow, VisitOutcomeRow } from "./visits.table";

export type Ctx = RequestCtx & { actor: Actor };

export const DAY_REMINDER_JOB = "visits.day_reminder";

/** How the actor stands to a visit; none at all is a 404 (the visit's existence does not leak). */
export type VisitRelation = "operator" | "provider" | "worker" | "family";

export interface LoadedVisit {
  visit: VisitRow;
  resident: ResidentRow;
  service: { title: string; category: string };
  relations: Set<VisitRelation>;
}

export async function loadVisit(db: Executor, visitId: string): Promise<VisitRow> {
  const visit = await db
    .selectFrom("visits")
    .selectAll()
    .where("id", "=", visitId)
    .executeTakeFirst();
  if (!visit) throw notFound("the visit");
  return visit;
}

/**
 * The worker rows (one per provider they work for) of a signed-in user that may act as workers
 * now: verified, with a verified provider. A suspended worker (or provider) loses their visits,
 * their homes' addresses and access notes at once, whatever is still assigned.
 */
export async function workerIdsOf(db: Executor, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom("workers")
    .innerJoin("providers", "providers.id", "workers.provider_id")
    .select("workers.id")
    .where("workers.user_id", "=", userId)
    .where("workers.status", "=", "verified")
    .where("providers.status", "=", "verified")
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Takes the visit's row lock (PostgreSQL; on SQLite the open transaction is the only writer) so a
 * check-in, a refund, a cancel, a reassignment or the watch act on the visit one after another,
 * each seeing what the one before it committed.
 */
export async function lockVisit(trx: Executor, visitId: string) {
  if (!isPostgres(trx)) return;
  await trx.selectFrom("visits").select("id").where("id", "=", visitId).forUpdate().execute();
}

export async function visitAccess(
  db: Executor,
  actor: Actor,
  visitId: string,
  allowed: readonly VisitRelation[],
  doing: string,
): Promise<LoadedVisit> {
  const visit = await loadVisit(db, visitId);
  const resident = await db
    .selectFrom("residents")
    .selectAll()
    .where("id", "=", visit.resident_id)
    .executeTakeFirstOrThrow();
  const relations = new Set<VisitRelation>();
  if (actor.roles.includes("operator")) relations.add("operator");
  const admin = await db
    .selectFrom("provider_admins")
    .select("user_id")
    .where("provider_id", "=", visit.provider_id)
    .where("user_id", "=", actor.userId)
    .executeTakeFirst();
  if (admin) relations.add("provider");
  if (visit.worker_id && (await workerIdsOf(db, actor.userId)).includes(visit.worker_id)) {
    relations.add("worker");
  }
  const family = await relationsTo(db, actor, resident);
  if (family.some((r) => r === "primary" || r === "member" || r === "self"))
    relations.add("family");
  if (relations.size === 0) throw notFound("the visit");
  if (!allowed.some((r) => relations.has(r))) {
    throw new AppError("forbidden", `only ${allowed.join(" or ")} may ${doing}`);
  }
  const service = await db
    .selectFrom("services")
    .select(["title", "category"])
    .where("id", "=", visit.service_id)
    .executeTakeFirstOrThrow();
  return { visit, resident, service, relations };
}

export function residentName(r: Pick<ResidentRow, "preferred_name" | "full_name">) {
  return r.preferred_name ?? r.full_name;
}

export function addressOf(r: ResidentRow) {
  return [r.address_line1, r.address_line2, r.locality, r.region, r.postal_code]
    .filter(Boolean)
    .join(", ");
}

/** A link any phone's map app opens at the home. */
export function mapLink(r: Pick<ResidentRow, "latitude" | "longitude">) {
  return `https://www.openstreetmap.org/?mlat=${r.latitude}&mlon=${r.longitude}#map=18/${r.latitude}/${r.longitude}`;
}

/** The tasks and medications a visit carries: the version checked in under, else the current. */
export async function visitItems(db: Executor, visit: VisitRow, timeZone: string) {
  const plan =
    visit.plan_version !== null
      ? await planVersion(db, visit.resident_id, visit.plan_version)
      : await currentPlan(db, visit.resident_id).catch(() => null);
  const items = plan
    ? dueItems(plan.plan, {
        startsAt: new Date(visit.starts_at),
        endsAt: new Date(visit.ends_at),
        timeZone,
      })
    : [];
  return { items, planVersion: plan?.version ?? null, planNotes: plan?.plan.notes ?? null };
}

export function presentEntry(e: VisitEntryRow) {
  return {
    id: e.id,
    visitId: e.visit_id,
    residentId: e.resident_id,
    providerId: e.provider_id,
    kind: e.kind,
    clientId: e.client_id,
    worker: { id: e.worker_id, name: e.worker_name },
    serviceType: e.service_type,
    occurredAt: e.occurred_at,
    receivedAt: e.received_at,
    offline: e.offline === 1,
    verification: {
      method: e.method,
      verified: e.verified === 1,
      distanceMeters: e.distance_m === null ? null : Math.round(e.distance_m),
      accuracyMeters: e.accuracy_m,
      exception: e.exception,
      exceptionReason: e.exception_reason,
    },
    location: e.latitude === null ? null : { latitude: e.latitude, longitude: e.longitude },
    notes: e.notes,
    wellbeing: e.wellbeing ? (JSON.parse(e.wellbeing) as Record<string, string>) : null,
    durationComment: e.duration_comment,
  };
}

export function presentItems(items: DueItem[], outcomes: VisitOutcomeRow[]) {
  const byKey = new Map(
    outcomes.map((o) => [
      itemKey({ kind: o.item_kind, itemId: o.item_id, dueTime: o.due_time }),
      o,
    ]),
  );
  return items.map((i) => {
    const o = byKey.get(itemKey(i));
    return {
      ...i,
      outcome: o ? { outcome: o.outcome, reason: o.reason, recordedAt: o.recorded_at } : null,
    };
  });
}

/** Everything about one visit that the people related to it may see. */
export async function visitDetail(db: Executor, loaded: LoadedVisit) {
  const { visit, resident, service, relations } = loaded;
  const worker = visit.worker_id
    ? await db
        .selectFrom("workers")
        .select(["id", "legal_name", "photo_ref", "phone"])
        .where("id", "=", visit.worker_id)
        .executeTakeFirst()
    : undefined;
  const booking = await db
    .selectFrom("bookings")
    .select(["notes", "status"])
    .where("id", "=", visit.booking_id)
    .executeTakeFirstOrThrow();
  const entries = await db
    .selectFrom("visit_entries")
    .selectAll()
    .where("visit_id", "=", visit.id)
    .orderBy("occurred_at")
    .execute();
  const outcomes = await db
    .selectFrom("visit_outcomes")
    .selectAll()
    .where("visit_id", "=", visit.id)
    .execute();
  const {
    items,
    planVersion: version,
    planNotes,
  } = await visitItems(db, visit, resident.time_zone);
  const checkIn = entries.find((e) => e.kind === "check_in");
  const checkOut = entries.find((e) => e.kind === "check_out");
  return {
    id: visit.id,
    bookingId: visit.booking_id,
    providerId: visit.provider_id,
    status: visit.status,
    state: visitState(visit),
    startsAt: visit.starts_at,
    endsAt: visit.ends_at,
    localDate: visit.local_date,
    localTime: visit.local_time,
    timeZone: resident.time_zone,
    service: { id: visit.service_id, title: service.title, type: service.category },
    resident: {
      id: resident.id,
      name: residentName(resident),
      address: addressOf(resident),
      latitude: resident.latitude,
      longitude: resident.longitude,
      mapLink: mapLink(resident),
    },
    worker: worker
      ? {
          id: worker.id,
          name: worker.legal_name,
          photoRef: worker.photo_ref,
          // The family may call the person coming to their mother's home.
          phone: worker.phone,
        }
      : null,
    assignedAt: visit.assigned_at,
    notes: booking.notes,
    planNotes:
      relations.has("family") || relations.has("worker") || relations.has("operator")
        ? planNotes
        : null,
    planVersion: version,
    items: presentItems(items, outcomes),
    checkIn: checkIn ? presentEntry(checkIn) : null,
    checkOut: checkOut ? presentEntry(checkOut) : null,
    late: visit.late_at !== null,
    missed: visit.missed_at !== null,
    refundableAsMissed:
      visit.missed_at !== null && visit.checked_in_at === null && visit.status === "scheduled",
    accessNotesAvailable: relations.has("worker") && inProgress(visit),
    price: Number(visit.price_minor),
    currency: visit.currency,
    verifiedAt: visit.verified_at,
    reviewUntil: visit.review_until,
    cancelReason: visit.cancel_reason,
  };
}

export function inProgress(v: VisitRow) {
  return v.checked_in_at !== null && v.checked_out_at === null && v.status === "scheduled";
}

/** Where a visit stands, in the words a page shows. */
export function visitState(v: VisitRow) {
  if (v.status !== "scheduled") return v.status;
  if (v.checked_in_at) return "in_progress";
  if (v.missed_at) return "missed";
  if (v.late_at) return "late";
  return v.worker_id ? "assigned" : "unassigned";
}

export async function getVisit(db: Executor, ctx: Ctx, visitId: string) {
  const loaded = await visitAccess(
    db,
    ctx.actor,
    visitId,
    ["operator", "provider", "worker", "family"],
    "see this visit",
  );
  return visitDetail(db, loaded);
}

/** Visits of a resident (the family), of a provider (its admins), in a date range. */
export async function listVisits(
  db: Executor,
  ctx: Ctx,
  q: {
    residentId?: string | undefined;
    providerId?: string | undefined;
    from: string;
    to: string;
    unassigned?: boolean | undefined;
  },
) {
  let query = db
    .selectFrom("visits")
    .innerJoin("residents", "residents.id", "visits.resident_id")
    .innerJoin("services", "services.id", "visits.service_id")
    .leftJoin("workers", "workers.id", "visits.worker_id")
    .selectAll("visits")
    .select([
      "residents.full_name",
      "residents.preferred_name",
      "services.title as service_title",
      "workers.legal_name as worker_name",
    ])
    .where("visits.local_date", ">=", q.from)
    .where("visits.local_date", "<=", q.to);
  if (q.residentId) {
    await authorizeResident(db, ctx.actor, q.residentId, "view");
    query = query.where("visits.resident_id", "=", q.residentId);
  } else if (q.providerId) {
    const admin = await db
      .selectFrom("provider_admins")
      .select("user_id")
      .where("provider_id", "=", q.providerId)
      .where("user_id", "=", ctx.actor.userId)
      .executeTakeFirst();
    if (!admin && !ctx.actor.roles.includes("operator")) throw notFound("the provider");
    query = query.where("visits.provider_id", "=", q.providerId);
  } else if (!ctx.actor.roles.includes("operator")) {
    // Operators (the night desk) may see every visit of the range.
    throw new AppError("bad_request", "name a residentId or a providerId");
  }
  if (q.unassigned) query = query.where("visits.worker_id", "is", null);
  const rows = await query.orderBy("visits.starts_at").limit(500).execute();
  return {
    items: rows.map((v) => ({
      id: v.id,
      bookingId: v.booking_id,
      residentId: v.resident_id,
      residentName: v.preferred_name ?? v.full_name,
      providerId: v.provider_id,
      service: v.service_title,
      startsAt: v.starts_at,
      endsAt: v.ends_at,
      localDate: v.local_date,
      localTime: v.local_time,
      status: v.status,
      state: visitState(v),
      worker: v.worker_id ? { id: v.worker_id, name: v.worker_name } : null,
      checkedInAt: v.checked_in_at,
      checkedOutAt: v.checked_out_at,
    })),
  };
}

/** The worker's other visits that overlap this one (cancelled and refunded ones do not count). */
async function overlapping(db: Executor, workerId: string, visit: VisitRow) {
  return db
    .selectFrom("visits")
    .select(["id", "starts_at", "ends_at", "local_date", "local_time"])
    .where("worker_id", "=", workerId)
    .where("id", "!=", visit.id)
    .where("status", "not in", ["cancelled", "refunded"])
    .where("starts_at", "<", visit.ends_at)
    .where("ends_at", ">", visit.starts_at)
    .execute();
}

/**
 * The provider assigns a worker to a visit, or to it and the rest of its series. Each visit is
 * checked (a verified worker of this provider, with the skill and a valid certificate on the
 * day, and free at that time); one refusal refuses the whole request, with the reason.
 * Replacing a worker tells the family who is coming instead.
 */
export async function assignWorker(
  trx: Trx,
  ctx: Ctx,
  visitId: string,
  input: { workerId: string; scope: "visit" | "series" },
) {
  const loaded = await visitAccess(
    trx,
    ctx.actor,
    visitId,
    ["provider", "operator"],
    "assign the worker",
  );
  const { visit, resident, service } = loaded;
  const booking = await trx
    .selectFrom("bookings")
    .select(["status"])
    .where("id", "=", visit.booking_id)
    .executeTakeFirstOrThrow();
  if (booking.status !== "accepted") {
    throw new AppError("invalid_state", `the booking is ${booking.status}: accept it first`);
  }
  const worker = await trx
    .selectFrom("workers")
    .select(["id", "provider_id", "legal_name"])
    .where("id", "=", input.workerId)
    .executeTakeFirst();
  if (!worker || worker.provider_id !== visit.provider_id) {
    throw new AppError("assignment_refused", "the worker does not work for this provider", {
      reason: "not_found",
    });
  }
  const targets =
    input.scope === "series"
      ? await trx
          .selectFrom("visits")
          .selectAll()
          .where("booking_id", "=", visit.booking_id)
          .where("starts_at", ">=", visit.starts_at)
          .where("status", "=", "scheduled")
          .where("checked_in_at", "is", null)
          .orderBy("starts_at")
          .execute()
      : [visit];
  if (visit.status !== "scheduled" || visit.checked_in_at !== null) {
    throw new AppError("invalid_state", "only a visit not yet started can be assigned");
  }
  // Two assignments of one worker at once must not both pass the overlap check.
  if (isPostgres(trx)) {
    await trx.selectFrom("workers").select("id").where("id", "=", worker.id).forUpdate().execute();
  }
  const changed: { visit: VisitRow; previous: string | null }[] = [];
  for (const target of targets) {
    const ok = await assignableWorker(trx, worker.id, {
      skill: service.category,
      at: new Date(target.starts_at),
      timeZone: resident.time_zone,
    });
    if (!ok.ok) {
      throw new AppError(
        "assignment_refused",
        `${worker.legal_name} cannot take the visit on ${target.local_date}: ${ok.message}`,
        { reason: ok.reason, visitId: target.id },
      );
    }
    const clash = await overlapping(trx, worker.id, target);
    if (clash.length > 0) {
      const c = clash[0]!;
      throw new AppError(
        "assignment_refused",
        `${worker.legal_name} already has a visit on ${c.local_date} at ${c.local_time} that overlaps the one on ${target.local_date} at ${target.local_time}`,
        { reason: "overlap", visitId: target.id, conflictingVisitId: c.id },
      );
    }
    if (target.worker_id === worker.id) continue;
    const updated = await trx
      .updateTable("visits")
      .set({
        worker_id: worker.id,
        assigned_at: iso(ctx.now),
        assigned_by: ctx.actor.userId,
        updated_at: iso(ctx.now),
      })
      .where("id", "=", target.id)
      .where("status", "=", "scheduled")
      .where("checked_in_at", "is", null)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) {
      throw new AppError(
        "invalid_state",
        `the visit on ${target.local_date} has started or ended meanwhile: assign again`,
      );
    }
    changed.push({ visit: target, previous: target.worker_id });
  }
  if (input.scope === "series") {
    await trx
      .updateTable("bookings")
      .set({ worker_id: worker.id, updated_at: iso(ctx.now) })
      .where("id", "=", visit.booking_id)
      .execute();
  }

  // The family hears once per request (the first visit changed, and how many more), each
  // replaced worker once, with their day reminder moved to what is left of their day.
  const replaced = changed.filter((c) => c.previous !== null);
  if (replaced.length > 0) {
    const first = replaced[0]!;
    const before = await trx
      .selectFrom("workers")
      .select("legal_name")
      .where("id", "=", first.previous!)
      .executeTakeFirst();
    await tellFamily(
      trx,
      first.visit.resident_id,
      {
        purpose: "visit_reassigned",
        message: {
          t: "visit_reassigned",
          residentName: residentName(resident),
          workerName: worker.legal_name,
          previousName: before?.legal_name ?? "",
          startsAt: first.visit.starts_at,
          later: replaced.length - 1,
        },
        dedupeKey: `visit-reassigned:${first.visit.id}:${worker.id}:${iso(ctx.now)}`,
        channels: ["push", "sms"],
      },
      ctx.now,
    );
    for (const previous of new Set(replaced.map((c) => c.previous!))) {
      const theirs = replaced.filter((c) => c.previous === previous);
      await tellWorker(
        trx,
        previous,
        {
          purpose: "visit_unassigned",
          message: {
            t: "visit_unassigned",
            residentName: residentName(resident),
            startsAt: theirs[0]!.visit.starts_at,
            later: theirs.length - 1,
          },
          dedupeKey: `visit-unassigned:${theirs[0]!.visit.id}:${previous}:${iso(ctx.now)}`,
          channels: ["push", "sms"],
        },
        ctx.now,
        { language: resident.language, timeZone: resident.time_zone },
      );
      for (const date of new Set(theirs.map((c) => c.visit.local_date))) {
        const left = await firstVisitOfDay(trx, previous, date);
        if (left) await scheduleDayReminder(trx, previous, left, resident.time_zone, ctx.now);
      }
    }
  }
  for (const { visit: v, previous } of changed) {
    await scheduleDayReminder(trx, worker.id, v, resident.time_zone, ctx.now);
    await recordAudit(
      trx,
      {
        actorUserId: ctx.actor.userId,
        action: previous ? "visit.reassign" : "visit.assign",
        entityType: "visit",
        entityId: v.id,
        residentId: v.resident_id,
        requestId: ctx.requestId,
        details: { workerId: worker.id, previousWorkerId: previous },
      },
      ctx.now,
    );
  }
  return {
    assigned: targets.map((t) => t.id),
    visit: await visitDetail(trx, { ...loaded, visit: await loadVisit(trx, visitId) }),
  };
}

/**
 * A visit a series rolled forward gets the series' worker, if they can still take it (verified,
 * certified on the day, free); otherwise it waits unassigned for the provider.
 */
export async function assignFromSeries(db: Executor, visit: VisitRow, workerId: string, now: Date) {
  const service = await db
    .selectFrom("services")
    .select("category")
    .where("id", "=", visit.service_id)
    .executeTakeFirstOrThrow();
  const resident = await db
    .selectFrom("residents")
    .select("time_zone")
    .where("id", "=", visit.resident_id)
    .executeTakeFirstOrThrow();
  const ok = await assignableWorker(db, workerId, {
    skill: service.category,
    at: new Date(visit.starts_at),
    timeZone: resident.time_zone,
  });
  if (!ok.ok || (await overlapping(db, workerId, visit)).length > 0) return false;
  await db
    .updateTable("visits")
    .set({ worker_id: workerId, assigned_at: iso(now), assigned_by: null, updated_at: iso(now) })
    .where("id", "=", visit.id)
    .execute();
  await scheduleDayReminder(
    db,
    workerId,
    { ...visit, worker_id: workerId },
    resident.time_zone,
    now,
  );
  return true;
}

/**
 * A reminder to the worker before the first visit of the day: one job per (worker, day, first
 * start), so an earlier visit assigned later gets its own; the job sends only if its visit is
 * still the first.
 */
async function scheduleDayReminder(
  db: Executor,
  workerId: string,
  visit: VisitRow,
  timeZone: string,
  now: Date,
) {
  const settings = await getSettings(db);
  const first = await firstVisitOfDay(db, workerId, visit.local_date);
  if (!first || first.starts_at <= iso(now)) return;
  const at = addMs(new Date(first.starts_at), -settings["visits.reminder_minutes"] * 60_000);
  await insertJob(
    db,
    {
      kind: DAY_REMINDER_JOB,
      payload: { workerId, date: first.local_date, firstStartsAt: first.starts_at, timeZone },
      runAt: at < now ? now : at,
      maxAttempts: 20,
      dedupeKey: `visit-day-reminder:${workerId}:${first.local_date}:${first.starts_at}`,
    },
    now,
  );
}

async function firstVisitOfDay(db: Executor, workerId: string, localDate: string) {
  return db
    .selectFrom("visits")
    .selectAll()
    .where("worker_id", "=", workerId)
    .where("local_date", "=", localDate)
    .where("status", "=", "scheduled")
    .orderBy("starts_at")
    .limit(1)
    .executeTakeFirst();
}

/** The reminder job: tells the worker about the day if this is still its first visit. */
export async function sendDayReminder(
  db: Executor,
  payload: { workerId: string; date: string; firstStartsAt: string; timeZone: string },
  now: Date,
) {
  const first = await firstVisitOfDay(db, payload.workerId, payload.date);
  if (!first || first.starts_at !== payload.firstStartsAt || first.checked_in_at) return false;
  const count = await db
    .selectFrom("visits")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("worker_id", "=", payload.workerId)
    .where("local_date", "=", payload.date)
    .where("status", "=", "scheduled")
    .executeTakeFirstOrThrow();
  const resident = await db
    .selectFrom("residents")
    .selectAll()
    .where("id", "=", first.resident_id)
    .executeTakeFirstOrThrow();
  await tellWorker(
    db,
    payload.workerId,
    {
      purpose: "worker_day",
      message: {
        t: "worker_day",
        visits: Number(count.n),
        firstAt: first.starts_at,
        residentName: residentName(resident),
        address: addressOf(resident),
      },
      dedupeKey: `worker-day:${payload.workerId}:${payload.date}`,
      channels: ["push", "sms"],
    },
    now,
    { language: resident.language, timeZone: resident.time_zone },
  );
  return true;
}

/**
 * The signed-in worker's visits on a day (default: today in their time zone), in order, with
 * where to go and what to do. Access notes are not here: they are revealed inside a visit.
 */
export async function workerDay(db: Executor, ctx: Ctx, date?: string) {
  const workerIds = await workerIdsOf(db, ctx.actor.userId);
  if (workerIds.length === 0) {
    throw new AppError(
      "forbidden",
      "you are not a verified care worker of a verified provider (registered, and not suspended)",
    );
  }
  const user = await db
    .selectFrom("users")
    .select("time_zone")
    .where("id", "=", ctx.actor.userId)
    .executeTakeFirstOrThrow();
  // "Today" where the worker works: the homes they visit, not an account left on UTC.
  const near = await db
    .selectFrom("visits")
    .innerJoin("residents", "residents.id", "visits.resident_id")
    .select("residents.time_zone")
    .where("visits.worker_id", "in", workerIds)
    .where("visits.starts_at", "<=", iso(addMs(ctx.now, 86_400_000)))
    .orderBy("visits.starts_at", "desc")
    .limit(1)
    .executeTakeFirst();
  const timeZone = near?.time_zone ?? user.time_zone;
  const day = date ?? localParts(ctx.now, timeZone).date;
  const visits = await db
    .selectFrom("visits")
    .selectAll()
    .where("worker_id", "in", workerIds)
    .where("local_date", "=", day)
    .where("status", "not in", ["cancelled", "refunded"])
    .orderBy("starts_at")
    .execute();
  const items = [];
  // These are the worker's own visits (selected by worker id): no second access check each.
  const relations = new Set<VisitRelation>(["worker"]);
  for (const visit of visits) {
    const resident = await db
      .selectFrom("residents")
      .selectAll()
      .where("id", "=", visit.resident_id)
      .executeTakeFirstOrThrow();
    const service = await db
      .selectFrom("services")
      .select(["title", "category"])
      .where("id", "=", visit.service_id)
      .executeTakeFirstOrThrow();
    items.push(await visitDetail(db, { visit, resident, service, relations }));
  }
  return { date: day, timeZone, visits: items };
}

/** Access notes, to the worker inside a checked-in visit only; every reveal is audited. */
export async function revealAccessNotes(db: Executor, ctx: Ctx, visitId: string) {
  const { visit, resident } = await visitAccess(
    db,
    ctx.actor,
    visitId,
    ["worker"],
    "read the access notes of this visit",
  );
  if (!inProgress(visit)) {
    throw new AppError(
      "forbidden",
      "access notes are shown only between your check-in and check-out at this home",
    );
  }
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action: "resident.access_notes.read",
      entityType: "resident",
      entityId: resident.id,
      residentId: resident.id,
      requestId: ctx.requestId,
      details: { visitId },
    },
    ctx.now,
  );
  return { visitId, accessNotes: resident.access_notes };
}

// --- one-time presence codes -------------------------------------------------------------------

const MAX_CODE_ATTEMPTS = 5;

function hashCode(visitId: string, code: string) {
  return createHash("sha256").update(`${visitId}:${code}`).digest("hex");
}

function sameHash(a: string, b: string) {
  return timingSafeEqual(Buffer.from(a, "hex"), Buffer.from(b, "hex"));
}

/** The home devices that can show a code now: active, online, the resident's. */
async function devicesToShow(db: Executor, residentId: string) {
  return db
    .selectFrom("devices")
    .select(["id", "kind"])
    .where("resident_id", "=", residentId)
    .where("status", "=", "active")
    .where("connection", "=", "online")
    .orderBy("created_at")
    .execute();
}

/**
 * The worker asks for a one-time code. `device`: the home device shows or speaks it, and the
 * worker types it in (the caller sends `show_code` after the commit). `family`: the code is on
 * the worker's screen, the family is asked to confirm it in kincare (a phone call, a video call,
 * or the resident's own app).
 */
export async function requestPresenceCode(
  trx: Trx,
  ctx: Ctx,
  visitId: string,
  via: "device" | "family",
) {
  const { visit, resident } = await visitAccess(
    trx,
    ctx.actor,
    visitId,
    ["worker"],
    "ask for a presence code",
  );
  if (visit.status !== "scheduled" || visit.checked_out_at) {
    throw new AppError("invalid_state", "this visit is over");
  }
  const settings = await getSettings(trx);
  const devices = via === "device" ? await devicesToShow(trx, resident.id) : [];
  if (via === "device" && devices.length === 0) {
    throw new AppError(
      "invalid_state",
      "no home device is online to show a code: use your position or ask the family to confirm",
    );
  }
  const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
  const expiresAt = addMs(ctx.now, settings["visits.code_ttl_minutes"] * 60_000);
  const id = newId();
  await trx
    .insertInto("visit_codes")
    .values({
      id,
      visit_id: visit.id,
      via,
      code_hash: hashCode(visit.id, code),
      created_at: iso(ctx.now),
      expires_at: iso(expiresAt),
      confirmed_at: null,
      confirmed_by: null,
      failed_attempts: 0,
      used_at: null,
    })
    .execute();
  const worker = await trx
    .selectFrom("workers")
    .select("legal_name")
    .where("id", "=", visit.worker_id!)
    .executeTakeFirstOrThrow();
  if (via === "family") {
    await tellFamily(
      trx,
      resident.id,
      {
        purpose: "presence_code",
        message: {
          t: "presence_code",
          residentName: residentName(resident),
          workerName: worker.legal_name,
          startsAt: visit.starts_at,
        },
        dedupeKey: `presence-code:${id}`,
        channels: ["push", "sms"],
      },
      ctx.now,
    );
  }
  return {
    id,
    via,
    expiresAt: iso(expiresAt),
    // Only the family way shows the code to the worker; the device way makes them read it off
    // the device, which is the proof.
    code: via === "family" ? code : null,
    deviceIds: devices.map((d) => d.id),
    /** For the caller: what to send to the devices once committed. */
    send: via === "device" ? { code, expiresAt: iso(expiresAt) } : undefined,
  };
}

/** Counts a wrong code against every live code of the visit; too many burn them. */
export async function countFailure(
  trx: Executor,
  visitId: string,
  now: Date,
  /** A relative's typo counts against family codes only, not the device's. */
  via?: "family",
) {
  let q = trx
    .updateTable("visit_codes")
    .set((eb) => ({ failed_attempts: eb("failed_attempts", "+", 1) }))
    .where("visit_id", "=", visitId)
    .where("used_at", "is", null)
    .where("expires_at", ">", iso(now));
  if (via) q = q.where("via", "=", via);
  await q.execute();
}

function liveCodes(db: Executor, visitId: string) {
  return db
    .selectFrom("visit_codes")
    .selectAll()
    .where("visit_id", "=", visitId)
    .where("used_at", "is", null)
    .where("failed_attempts", "<", MAX_CODE_ATTEMPTS)
    .orderBy("created_at", "desc");
}

/** A family member or the resident confirms the code the worker at the door gave them. */
export async function confirmPresenceCode(db: Db, ctx: Ctx, visitId: string, code: string) {
  const visit = await loadVisit(db, visitId);
  await authorizeResident(db, ctx.actor, visit.resident_id, "confirmPresence");
  const confirmed = await db.transaction().execute(async (trx) => {
    const codes = await liveCodes(trx, visitId)
      .where("via", "=", "family")
      .where("expires_at", ">", iso(ctx.now))
      .execute();
    const match = codes.find((c) => sameHash(c.code_hash, hashCode(visitId, code)));
    if (!match) {
      // Counted, and committed: guessing is limited.
      await countFailure(trx, visitId, ctx.now, "family");
      return null;
    }
    await trx
      .updateTable("visit_codes")
      .set({ confirmed_at: iso(ctx.now), confirmed_by: ctx.actor.userId })
      .where("id", "=", match.id)
      .execute();
    await recordAudit(
      trx,
      {
        actorUserId: ctx.actor.userId,
        action: "visit.presence_confirmed",
        entityType: "visit",
        entityId: visitId,
        residentId: visit.resident_id,
        requestId: ctx.requestId,
      },
      ctx.now,
    );
    return { visitId, confirmedAt: iso(ctx.now) };
  });
  if (!confirmed) throw new AppError("code_invalid", "that code is wrong or has expired");
  return confirmed;
}

/**
 * The code a check-in or check-out carries, judged at the time it was captured (an offline
 * entry arrives after the code expired). A device code proves presence by itself; a family code
 * must have been confirmed.
 */
export async function judgeCode(
  trx: Executor,
  visitId: string,
  code: string,
  capturedAt: Date,
  now: Date,
): Promise<{ id: string; method: "device_code" | "family_code" }> {
  const codes = await liveCodes(trx, visitId).execute();
  const at = iso(capturedAt);
  const match = codes.find(
    (c) =>
      c.created_at <= addMs(capturedAt, 60_000).toISOString() &&
      c.expires_at >= at &&
      sameHash(c.code_hash, hashCode(visitId, code)),
  );
  // The caller counts the failure outside its transaction, which this error rolls back.
  if (!match) throw new AppError("code_invalid", "that code is wrong or has expired");
  if (match.via === "family" && !match.confirmed_at) {
    throw new AppError(
      "invalid_state",
      "the family has not confirmed this code yet: ask them to enter it in kincare",
    );
  }
  await trx
    .updateTable("visit_codes")
    .set({ used_at: iso(now) })
    .where("id", "=", match.id)
    .execute();
  return { id: match.id, method: match.via === "device" ? "device_code" : "family_code" };
}
