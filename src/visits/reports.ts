// What the family and the payers read about the care a resident got. The care log: each visit of
// a period with what was done (tasks, medications, notes, wellbeing, how the worker's presence
// was proven), the alerts, and a summary of the vital signs. The monthly report: the same period
// counted (visits, hours of care, tasks and medications, alerts, vitals), as JSON or CSV. The EVV
// export: one CSV row per verified visit with the six elements of electronic visit verification.
// Dates are local to the resident's time zone; instants are ISO-8601 UTC. Reads are audited
// (identifiers and dates only: no health text).
import { authorizeResident, can } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import type { VisitRow } from "../bookings/bookings.table";
import { addDays } from "../bookings/schedule";
import type { CarePlan, VitalType } from "../careplans/careplans.schemas";
import { currentPlan, planVersion } from "../careplans/careplans.service";
import { iso } from "../clock";
import type { Executor } from "../db/database";
import { canonicalUnit, type ReadingType, readingTypes } from "../devices/protocol";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { type CsvValue, csvDocument } from "../http/csv";
import { findProvider, isProviderAdmin } from "../providers/providers.repository";
import type { ResidentRow } from "../residents/residents.table";
import { localParts, zonedToUtc } from "../time";
import { withRollups } from "../vitals/vitals.table";
import { type DueItem, dueItems, itemKey } from "./due";
import { type Ctx, residentName, visitState } from "./visits.service";
import type { Outcome, VisitEntryRow, VisitOutcomeRow } from "./visits.table";

const DAY_MS = 86_400_000;
/** The longest period a care log or an EVV export covers. */
export const MAX_RANGE_DAYS = 366;
/** A care log lists at most this many visits and this many alerts (then says it was cut). */
const MAX_LOG_ROWS = 2_000;
/** An EVV export larger than this must be asked for in parts. */
export const MAX_EVV_ROWS = 50_000;
/** Blood glucose is stored in mg/dL; a plan may set its range in mmol/L. */
const MGDL_PER_MMOL_GLUCOSE = 18.016;

// --- periods -----------------------------------------------------------------------------------

function rangeError(path: string, message: string) {
  return new AppError("validation_failed", `the request is not valid: ${path}: ${message}`, {
    issues: [{ path, message }],
  });
}

/** Local dates from..to (inclusive): from not after to, at most MAX_RANGE_DAYS days. */
export function checkRange(from: string, to: string) {
  if (from > to) throw rangeError("query.to", `must not be before from (${from})`);
  const days =
    Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS) + 1;
  if (days > MAX_RANGE_DAYS) {
    throw rangeError(
      "query.to",
      `the range covers ${days} days, at most ${MAX_RANGE_DAYS}: narrow it or ask in parts`,
    );
  }
}

export interface Period {
  /** Local dates, inclusive. */
  from: string;
  to: string;
  /** The instants [start, end) those local days cover. */
  start: string;
  end: string;
  timeZone: string;
}

export function localPeriod(from: string, to: string, timeZone: string): Period {
  return {
    from,
    to,
    start: iso(zonedToUtc(from, "00:00", timeZone)),
    end: iso(zonedToUtc(addDays(to, 1), "00:00", timeZone)),
    timeZone,
  };
}

/** The first and last local dates of a month (YYYY-MM). */
export function monthDates(month: string): { from: string; to: string } {
  const [y, m] = month.split("-").map(Number) as [number, number];
  const next = m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, "0")}-01`;
  return { from: `${month}-01`, to: addDays(next, -1) };
}

function local(at: string, timeZone: string) {
  const p = localParts(new Date(at), timeZone);
  return { localDate: p.date, localTime: p.time };
}

const round2 = (v: number) => Math.round(v * 100) / 100;

// --- loading a period's visits -----------------------------------------------------------------

interface LoadedPeriod {
  visits: (VisitRow & {
    service_title: string;
    service_type: string;
    provider_name: string;
    assigned_worker_name: string | null;
  })[];
  truncated: boolean;
  entries: Map<string, { checkIn?: VisitEntryRow; checkOut?: VisitEntryRow }>;
  outcomes: Map<string, VisitOutcomeRow[]>;
  /** The tasks and medications a visit carries (see dueFor). */
  due: Map<string, DueItem[]>;
}

/** Care plans by version, each read once per request. */
function planCache(db: Executor, residentId: string) {
  const cache = new Map<string, Promise<CarePlan | null>>();
  return (version: number | null) => {
    const key = version === null ? "current" : String(version);
    let found = cache.get(key);
    if (!found) {
      found = (
        version === null ? currentPlan(db, residentId) : planVersion(db, residentId, version)
      ).then(
        (v) => v.plan,
        () => null,
      );
      cache.set(key, found);
    }
    return found;
  };
}

/**
 * What a visit carries: a visit a worker checked in to, the plan version it was checked in
 * under; a visit still ahead (or missed), the current plan; a visit cancelled or refunded before
 * anyone came, nothing.
 */
async function dueFor(
  plans: ReturnType<typeof planCache>,
  v: VisitRow,
  timeZone: string,
): Promise<DueItem[]> {
  let plan: CarePlan | null = null;
  if (v.checked_in_at !== null) plan = await plans(v.plan_version);
  else if (v.status === "scheduled") plan = await plans(null);
  if (!plan) return [];
  return dueItems(plan, {
    startsAt: new Date(v.starts_at),
    endsAt: new Date(v.ends_at),
    timeZone,
  });
}

async function loadVisits(
  db: Executor,
  resident: ResidentRow,
  period: Period,
  limit: number,
): Promise<LoadedPeriod> {
  const inPeriod = (q: ReturnType<typeof visitsOfResident>) =>
    q.where("visits.local_date", ">=", period.from).where("visits.local_date", "<=", period.to);
  const visitsOfResident = () =>
    db.selectFrom("visits").where("visits.resident_id", "=", resident.id);
  const rows = await inPeriod(visitsOfResident())
    .innerJoin("services", "services.id", "visits.service_id")
    .innerJoin("providers", "providers.id", "visits.provider_id")
    .leftJoin("workers", "workers.id", "visits.worker_id")
    .selectAll("visits")
    .select([
      "services.title as service_title",
      "services.category as service_type",
      "providers.display_name as provider_name",
      "workers.legal_name as assigned_worker_name",
    ])
    .orderBy("visits.starts_at")
    .orderBy("visits.id")
    .limit(limit + 1)
    .execute();
  const visits = rows.slice(0, limit);
  const ids = inPeriod(visitsOfResident()).select("visits.id");
  const entries: LoadedPeriod["entries"] = new Map();
  for (const e of await db
    .selectFrom("visit_entries")
    .selectAll()
    .where("visit_id", "in", ids)
    .execute()) {
    const pair = entries.get(e.visit_id) ?? {};
    if (e.kind === "check_in") pair.checkIn = e;
    else pair.checkOut = e;
    entries.set(e.visit_id, pair);
  }
  const outcomes: LoadedPeriod["outcomes"] = new Map();
  for (const o of await db
    .selectFrom("visit_outcomes")
    .selectAll()
    .where("visit_id", "in", ids)
    .orderBy("due_time")
    .orderBy("item_id")
    .execute()) {
    outcomes.set(o.visit_id, [...(outcomes.get(o.visit_id) ?? []), o]);
  }
  const plans = planCache(db, resident.id);
  const due: LoadedPeriod["due"] = new Map();
  for (const v of visits) due.set(v.id, await dueFor(plans, v, resident.time_zone));
  return { visits, truncated: rows.length > limit, entries, outcomes, due };
}

export interface CareItem {
  itemId: string;
  title: string;
  /** Local HH:MM it was due, or "" for "at the visit". */
  dueTime: string;
  /** A medication's dose (null for a task, or an outcome whose item left the plan). */
  dose: string | null;
  /** null: nothing recorded (yet). */
  outcome: Outcome | null;
  reason: string | null;
  recordedAt: string | null;
}

/** The items due with their outcomes, and any outcome recorded for an item no longer due. */
function itemsWithOutcomes(due: DueItem[], outcomes: VisitOutcomeRow[]) {
  const byKey = new Map(
    outcomes.map((o) => [
      itemKey({ kind: o.item_kind, itemId: o.item_id, dueTime: o.due_time }),
      o,
    ]),
  );
  const all: (CareItem & { kind: "task" | "medication" })[] = due.map((d) => {
    const o = byKey.get(itemKey(d));
    byKey.delete(itemKey(d));
    return {
      kind: d.kind,
      itemId: d.itemId,
      title: d.title,
      dueTime: d.dueTime,
      dose: d.dose,
      outcome: o?.outcome ?? null,
      reason: o?.reason ?? null,
      recordedAt: o?.recorded_at ?? null,
    };
  });
  for (const o of byKey.values()) {
    all.push({
      kind: o.item_kind,
      itemId: o.item_id,
      title: o.title,
      dueTime: o.due_time,
      dose: null,
      outcome: o.outcome,
      reason: o.reason,
      recordedAt: o.recorded_at,
    });
  }
  const strip = ({ kind: _kind, ...item }: CareItem & { kind: string }): CareItem => item;
  return {
    tasks: all.filter((i) => i.kind === "task").map(strip),
    medications: all.filter((i) => i.kind === "medication").map(strip),
  };
}

function entrySummary(e: VisitEntryRow | undefined, timeZone: string) {
  if (!e) return null;
  return {
    at: e.occurred_at,
    localTime: local(e.occurred_at, timeZone).localTime,
    method: e.method,
    verified: e.verified === 1,
    offline: e.offline === 1,
    exception: e.exception,
    exceptionReason: e.exception_reason,
    distanceMeters: e.distance_m === null ? null : Math.round(e.distance_m),
  };
}

function minutesBetween(from: string | null, to: string | null) {
  if (!from || !to) return null;
  return round2((Date.parse(to) - Date.parse(from)) / 60_000);
}

// --- vital signs -------------------------------------------------------------------------------

export interface VitalSummary {
  type: ReadingType;
  /** The canonical UCUM unit every value here is in. */
  unit: string;
  count: number;
  min: number;
  max: number;
  mean: number;
  /** The care plan's normal range (now), in `unit`; null when the plan has no enabled rule. */
  normalRange: { min: number | null; max: number | null } | null;
  /**
   * Readings outside the normal range. Only raw readings can be judged one by one: readings
   * older than the raw retention survive as hourly summaries, counted above but not judged here.
   */
  outOfRange: { below: number; above: number; judged: number } | null;
}

function normalRangeOf(plan: CarePlan | null, type: ReadingType) {
  if (type === "steps" || !plan) return null;
  const rule = plan.vitalRules[type as VitalType];
  if (!rule?.enabled) return null;
  const factor = type === "blood_glucose" && rule.unit === "mmol/L" ? MGDL_PER_MMOL_GLUCOSE : 1;
  const scale = (v: number | null) => (v === null ? null : round2(v * factor));
  if (rule.normal.min === null && rule.normal.max === null) return null;
  return { min: scale(rule.normal.min), max: scale(rule.normal.max) };
}

/** Count, min, max and mean of each type of reading in [start, end): raw rows and hourly rollups. */
export async function vitalsSummary(
  db: Executor,
  residentId: string,
  period: { start: string; end: string },
  plan: CarePlan | null,
): Promise<VitalSummary[]> {
  const raw = await db
    .selectFrom("readings")
    .select((eb) => [
      "type",
      eb.fn.countAll().as("count"),
      eb.fn.min("value").as("min"),
      eb.fn.max("value").as("max"),
      eb.fn.sum("value").as("sum"),
    ])
    .where("resident_id", "=", residentId)
    .where("measured_at", ">=", period.start)
    .where("measured_at", "<", period.end)
    .groupBy("type")
    .execute();
  // An hour counts when it starts inside the period (in a zone whose offset is not whole hours,
  // an hour at the edge of a day falls on one side).
  const rolled = await withRollups(db)
    .selectFrom("reading_rollups")
    .select((eb) => [
      "type",
      eb.fn.sum("reading_count").as("count"),
      eb.fn.min("value_min").as("min"),
      eb.fn.max("value_max").as("max"),
      eb.fn.sum("value_sum").as("sum"),
    ])
    .where("resident_id", "=", residentId)
    .where("hour_start", ">=", period.start)
    .where("hour_start", "<", period.end)
    .groupBy("type")
    .execute();
  const merged = new Map<
    string,
    { count: number; min: number; max: number; sum: number; raw: number }
  >();
  for (const [rows, isRaw] of [
    [raw, true],
    [rolled, false],
  ] as const) {
    for (const r of rows) {
      const count = Number(r.count);
      if (count === 0) continue;
      const a = { count, min: Number(r.min), max: Number(r.max), sum: Number(r.sum) };
      const m = merged.get(r.type);
      if (!m) merged.set(r.type, { ...a, raw: isRaw ? count : 0 });
      else {
        m.count += a.count;
        m.sum += a.sum;
        m.min = Math.min(m.min, a.min);
        m.max = Math.max(m.max, a.max);
        if (isRaw) m.raw += count;
      }
    }
  }
  const out: VitalSummary[] = [];
  for (const type of readingTypes) {
    const m = merged.get(type);
    if (!m) continue;
    const normalRange = normalRangeOf(plan, type);
    let outOfRange: VitalSummary["outOfRange"] = null;
    if (normalRange) {
      outOfRange = { below: 0, above: 0, judged: m.raw };
      if (m.raw > 0) {
        const { min: lo, max: hi } = normalRange;
        const row = await db
          .selectFrom("readings")
          .select((eb) => [
            eb.fn
              .sum(
                lo === null
                  ? eb.lit(0)
                  : eb.case().when("value", "<", lo).then(eb.lit(1)).else(eb.lit(0)).end(),
              )
              .as("below"),
            eb.fn
              .sum(
                hi === null
                  ? eb.lit(0)
                  : eb.case().when("value", ">", hi).then(eb.lit(1)).else(eb.lit(0)).end(),
              )
              .as("above"),
          ])
          .where("resident_id", "=", residentId)
          .where("type", "=", type)
          .where("measured_at", ">=", period.start)
          .where("measured_at", "<", period.end)
          .executeTakeFirst();
        outOfRange.below = Number(row?.below ?? 0);
        outOfRange.above = Number(row?.above ?? 0);
      }
    }
    out.push({
      type,
      unit: canonicalUnit[type],
      count: m.count,
      min: m.min,
      max: m.max,
      mean: round2(m.sum / m.count),
      normalRange,
      outOfRange,
    });
  }
  return out;
}

async function planNow(db: Executor, residentId: string) {
  return currentPlan(db, residentId).then(
    (v) => v.plan,
    () => null,
  );
}

// --- the care log ------------------------------------------------------------------------------

export interface RangeQuery {
  from?: string | undefined;
  to?: string | undefined;
}

/** The period asked for, or the last 30 days (today included) in the resident's zone. */
export function careLogPeriod(q: RangeQuery, timeZone: string, now: Date): Period {
  const to = q.to ?? (q.from ? addDays(q.from, 29) : localParts(now, timeZone).date);
  const from = q.from ?? addDays(to, -29);
  checkRange(from, to);
  return localPeriod(from, to, timeZone);
}

export async function careLog(db: Executor, ctx: Ctx, residentId: string, q: RangeQuery) {
  const { resident } = await authorizeResident(db, ctx.actor, residentId, "view");
  const tz = resident.time_zone;
  const period = careLogPeriod(q, tz, ctx.now);
  const loaded = await loadVisits(db, resident, period, MAX_LOG_ROWS);
  const alertRows = await db
    .selectFrom("alerts")
    .select([
      "id",
      "kind",
      "severity",
      "status",
      "source_type",
      "source_id",
      "summary",
      "opened_at",
      "acknowledged_at",
      "closed_at",
      "close_reason",
    ])
    .where("resident_id", "=", resident.id)
    .where("opened_at", ">=", period.start)
    .where("opened_at", "<", period.end)
    .orderBy("opened_at")
    .orderBy("id")
    .limit(MAX_LOG_ROWS + 1)
    .execute();
  const alerts = alertRows.slice(0, MAX_LOG_ROWS);

  const visitItems = loaded.visits.map((v) => {
    const pair = loaded.entries.get(v.id) ?? {};
    const { tasks, medications } = itemsWithOutcomes(
      loaded.due.get(v.id) ?? [],
      loaded.outcomes.get(v.id) ?? [],
    );
    const came = pair.checkIn ?? pair.checkOut;
    return {
      type: "visit" as const,
      at: v.starts_at,
      ...local(v.starts_at, tz),
      visit: {
        id: v.id,
        bookingId: v.booking_id,
        status: v.status,
        state: visitState(v),
        scheduledStart: v.starts_at,
        scheduledEnd: v.ends_at,
        checkedInAt: v.checked_in_at,
        checkedOutAt: v.checked_out_at,
        durationMinutes: minutesBetween(v.checked_in_at, v.checked_out_at),
        service: { id: v.service_id, title: v.service_title, type: v.service_type },
        provider: { id: v.provider_id, name: v.provider_name },
        // The person who came (as registered then), else the one assigned.
        worker: came
          ? { id: came.worker_id, name: came.worker_name }
          : v.worker_id
            ? { id: v.worker_id, name: v.assigned_worker_name ?? "" }
            : null,
        checkIn: entrySummary(pair.checkIn, tz),
        checkOut: entrySummary(pair.checkOut, tz),
        tasks,
        medications,
        notes: pair.checkOut?.notes ?? null,
        wellbeing: pair.checkOut?.wellbeing
          ? (JSON.parse(pair.checkOut.wellbeing) as {
              mood: string;
              appetite: string;
              concerns: string;
            })
          : null,
        durationComment: pair.checkOut?.duration_comment ?? null,
        late: v.late_at !== null,
        missed: v.missed_at !== null,
        cancelReason: v.cancel_reason,
        disputeReason: v.dispute_reason,
        price: Number(v.price_minor),
        currency: v.currency,
      },
    };
  });
  const alertItems = alerts.map((a) => ({
    type: "alert" as const,
    at: a.opened_at,
    ...local(a.opened_at, tz),
    alert: {
      id: a.id,
      kind: a.kind,
      severity: a.severity,
      status: a.status,
      summary: a.summary,
      openedAt: a.opened_at,
      acknowledgedAt: a.acknowledged_at,
      closedAt: a.closed_at,
      closeReason: a.close_reason,
      /** The visit it is about (a late, missed or open visit), to link the two on a page. */
      visitId: a.source_type === "visit" ? a.source_id : null,
    },
  }));
  const items = [...visitItems, ...alertItems].sort(
    (a, b) =>
      a.at.localeCompare(b.at) ||
      a.type.localeCompare(b.type) ||
      (a.type === "visit" ? a.visit.id : a.alert.id).localeCompare(
        b.type === "visit" ? b.visit.id : b.alert.id,
      ),
  );
  const vitals = await vitalsSummary(db, resident.id, period, await planNow(db, resident.id));
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action: "carelog.read",
      entityType: "resident",
      entityId: resident.id,
      residentId: resident.id,
      requestId: ctx.requestId,
      details: { from: period.from, to: period.to },
    },
    ctx.now,
  );
  return {
    resident: { id: resident.id, name: residentName(resident), timeZone: tz },
    from: period.from,
    to: period.to,
    start: period.start,
    end: period.end,
    generatedAt: iso(ctx.now),
    counts: { visits: visitItems.length, alerts: alertItems.length },
    truncated: { visits: loaded.truncated, alerts: alertRows.length > MAX_LOG_ROWS },
    items,
    vitals,
  };
}

// --- the monthly report ------------------------------------------------------------------------

const severities = ["critical", "warning", "low"] as const;
type SeverityCounts = { total: number; critical: number; warning: number; low: number };
const noAlerts = (): SeverityCounts => ({ total: 0, critical: 0, warning: 0, low: 0 });

/** Where a visit of the month ended up: every visit in exactly one of these. */
function category(v: VisitRow) {
  if (v.status === "verified" || v.status === "released") return "completed";
  if (v.status === "disputed") return "disputed";
  if (v.status === "cancelled") return "cancelled";
  if (v.missed_at !== null && v.checked_in_at === null) return "missed";
  if (v.status === "refunded") return "refunded";
  if (v.checked_in_at !== null) return "inProgress";
  return "upcoming";
}

export async function monthlyReport(
  db: Executor,
  ctx: Ctx,
  residentId: string,
  month: string | undefined,
) {
  const { resident } = await authorizeResident(db, ctx.actor, residentId, "view");
  const tz = resident.time_zone;
  const m = month ?? localParts(ctx.now, tz).date.slice(0, 7);
  const dates = monthDates(m);
  const period = localPeriod(dates.from, dates.to, tz);
  const loaded = await loadVisits(db, resident, period, 100_000);

  const visits = {
    scheduled: loaded.visits.length,
    completed: 0,
    disputed: 0,
    missed: 0,
    cancelled: 0,
    refunded: 0,
    inProgress: 0,
    upcoming: 0,
  };
  let careMs = 0;
  let careVisits = 0;
  const tasks = { due: 0, done: 0, notDone: 0, refused: 0, notApplicable: 0, open: 0 };
  const medications = { due: 0, given: 0, notGiven: 0, refused: 0, notApplicable: 0, open: 0 };
  for (const v of loaded.visits) {
    visits[category(v)] += 1;
    if (v.checked_in_at && v.checked_out_at) {
      careVisits += 1;
      careMs += Date.parse(v.checked_out_at) - Date.parse(v.checked_in_at);
    }
    // Tasks and medications count for the visits a worker came to.
    if (!v.checked_in_at) continue;
    const items = itemsWithOutcomes(loaded.due.get(v.id) ?? [], loaded.outcomes.get(v.id) ?? []);
    for (const t of items.tasks) {
      tasks.due += 1;
      if (t.outcome === null) tasks.open += 1;
      else if (t.outcome === "done") tasks.done += 1;
      else if (t.outcome === "not_done") tasks.notDone += 1;
      else if (t.outcome === "refused") tasks.refused += 1;
      else tasks.notApplicable += 1;
    }
    for (const t of items.medications) {
      medications.due += 1;
      if (t.outcome === null) medications.open += 1;
      else if (t.outcome === "done") medications.given += 1;
      else if (t.outcome === "not_done") medications.notGiven += 1;
      else if (t.outcome === "refused") medications.refused += 1;
      else medications.notApplicable += 1;
    }
  }

  const alertRows = await db
    .selectFrom("alerts")
    .select((eb) => ["kind", "severity", eb.fn.countAll().as("n")])
    .where("resident_id", "=", resident.id)
    .where("opened_at", ">=", period.start)
    .where("opened_at", "<", period.end)
    .groupBy(["kind", "severity"])
    .orderBy("kind")
    .execute();
  const all = noAlerts();
  const byKind: Record<string, SeverityCounts> = {};
  for (const r of alertRows) {
    const n = Number(r.n);
    const kind = byKind[r.kind] ?? noAlerts();
    byKind[r.kind] = kind;
    kind.total += n;
    all.total += n;
    if ((severities as readonly string[]).includes(r.severity)) {
      kind[r.severity] += n;
      all[r.severity] += n;
    }
  }

  const vitals = await vitalsSummary(db, resident.id, period, await planNow(db, resident.id));
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action: "report.read",
      entityType: "resident",
      entityId: resident.id,
      residentId: resident.id,
      requestId: ctx.requestId,
      details: { month: m },
    },
    ctx.now,
  );
  return {
    resident: { id: resident.id, name: residentName(resident), timeZone: tz },
    month: m,
    from: period.from,
    to: period.to,
    start: period.start,
    end: period.end,
    generatedAt: iso(ctx.now),
    visits,
    care: {
      /** Visits with a check-in and a check-out. */
      visits: careVisits,
      minutes: round2(careMs / 60_000),
      hours: round2(careMs / 3_600_000),
    },
    tasks,
    medications,
    alerts: { all, byKind },
    vitals,
  };
}

export type MonthlyReport = Awaited<ReturnType<typeof monthlyReport>>;

/**
 * The report as a tidy CSV: one figure per row, columns section,item,metric,value. `item` is
 * empty for a section's own figures, the alert kind ("all" for every kind) for alerts, the
 * reading type for vitals; metric names are the JSON's.
 */
export function monthlyReportCsv(r: MonthlyReport): string {
  const rows: CsvValue[][] = [
    ["report", "", "residentId", r.resident.id],
    ["report", "", "residentName", r.resident.name],
    ["report", "", "timeZone", r.resident.timeZone],
    ["report", "", "month", r.month],
    ["report", "", "from", r.from],
    ["report", "", "to", r.to],
    ["report", "", "generatedAt", r.generatedAt],
  ];
  for (const section of ["visits", "care", "tasks", "medications"] as const) {
    for (const [metric, value] of Object.entries(r[section]))
      rows.push([section, "", metric, value]);
  }
  for (const [item, counts] of [
    ["all", r.alerts.all],
    ...Object.entries(r.alerts.byKind),
  ] as const) {
    for (const [metric, value] of Object.entries(counts))
      rows.push(["alerts", item, metric, value]);
  }
  for (const v of r.vitals) {
    rows.push(
      ["vitals", v.type, "unit", v.unit],
      ["vitals", v.type, "count", v.count],
      ["vitals", v.type, "min", v.min],
      ["vitals", v.type, "max", v.max],
      ["vitals", v.type, "mean", v.mean],
      ["vitals", v.type, "normalMin", v.normalRange?.min],
      ["vitals", v.type, "normalMax", v.normalRange?.max],
      ["vitals", v.type, "outOfRangeBelow", v.outOfRange?.below],
      ["vitals", v.type, "outOfRangeAbove", v.outOfRange?.above],
      ["vitals", v.type, "outOfRangeJudged", v.outOfRange?.judged],
    );
  }
  return csvDocument(["section", "item", "metric", "value"], rows);
}

// --- the EVV export ----------------------------------------------------------------------------

export interface EvvQuery {
  from: string;
  to: string;
  providerId?: string | undefined;
  residentId?: string | undefined;
}

/** Operators any; a provider's admins their provider; a resident's primaries (and operators). */
async function authorizeEvv(db: Executor, actor: Actor, q: EvvQuery) {
  if (q.providerId) {
    const operator = actor.roles.includes("operator");
    if (!operator && !(await isProviderAdmin(db, q.providerId, actor.userId))) {
      throw notFound("the provider");
    }
    if (!(await findProvider(db, q.providerId))) throw notFound("the provider");
    return;
  }
  const access = await authorizeResident(db, actor, q.residentId!, "view");
  if (!can(access, "update")) {
    throw new AppError(
      "forbidden",
      "only the resident's primary family members (and operators) may export the visit record",
    );
  }
}

export const evvColumns = [
  "visit_id",
  "provider_id",
  "visit_status",
  "service_type",
  "service_title",
  "resident_id",
  "resident_name",
  "date_of_service",
  "worker_id",
  "worker_name",
  "start_time",
  "end_time",
  "check_in_location",
  "check_in_latitude",
  "check_in_longitude",
  "check_in_method",
  "check_in_verified",
  "check_in_exception",
  "check_in_exception_reason",
  "check_in_offline",
  "check_out_location",
  "check_out_latitude",
  "check_out_longitude",
  "check_out_method",
  "check_out_verified",
  "check_out_exception",
  "check_out_exception_reason",
  "check_out_offline",
] as const;

/**
 * The verified visits (verified, released or disputed: each has a check-in and a check-out) of
 * a provider or a resident whose local date lies in from..to, oldest first, one row each.
 */
export async function evvExport(db: Executor, ctx: Ctx, q: EvvQuery) {
  checkRange(q.from, q.to);
  await authorizeEvv(db, ctx.actor, q);
  let query = db
    .selectFrom("visits as v")
    .innerJoin("visit_entries as i", (j) =>
      j.onRef("i.visit_id", "=", "v.id").on("i.kind", "=", "check_in"),
    )
    .innerJoin("visit_entries as o", (j) =>
      j.onRef("o.visit_id", "=", "v.id").on("o.kind", "=", "check_out"),
    )
    .innerJoin("residents as r", "r.id", "v.resident_id")
    .innerJoin("services as s", "s.id", "v.service_id")
    .select([
      "v.id as visit_id",
      "v.provider_id",
      "v.status",
      "s.title as service_title",
      "r.id as resident_id",
      "r.full_name as resident_name",
      "r.time_zone",
      "i.service_type",
      "i.worker_id",
      "i.worker_name",
      "i.occurred_at as in_at",
      "i.latitude as in_lat",
      "i.longitude as in_lon",
      "i.method as in_method",
      "i.verified as in_verified",
      "i.exception as in_exception",
      "i.exception_reason as in_reason",
      "i.offline as in_offline",
      "o.occurred_at as out_at",
      "o.latitude as out_lat",
      "o.longitude as out_lon",
      "o.method as out_method",
      "o.verified as out_verified",
      "o.exception as out_exception",
      "o.exception_reason as out_reason",
      "o.offline as out_offline",
    ])
    .where("v.status", "in", ["verified", "released", "disputed"])
    .where("v.local_date", ">=", q.from)
    .where("v.local_date", "<=", q.to);
  query = q.providerId
    ? query.where("v.provider_id", "=", q.providerId)
    : query.where("v.resident_id", "=", q.residentId!);
  const rows = await query
    .orderBy("v.starts_at")
    .orderBy("v.id")
    .limit(MAX_EVV_ROWS + 1)
    .execute();
  if (rows.length > MAX_EVV_ROWS) {
    throw rangeError("query.to", `more than ${MAX_EVV_ROWS} visits: export the period in parts`);
  }
  const yesNo = (v: number) => (v === 1 ? "true" : "false");
  const place = (lat: number | null, lon: number | null) =>
    lat === null || lon === null ? ["no position", null, null] : ["position", lat, lon];
  const lines: CsvValue[][] = rows.map((r) => [
    r.visit_id,
    r.provider_id,
    r.status,
    r.service_type,
    r.service_title,
    r.resident_id,
    r.resident_name,
    localParts(new Date(r.in_at), r.time_zone).date,
    r.worker_id,
    r.worker_name,
    r.in_at,
    r.out_at,
    ...place(r.in_lat, r.in_lon),
    r.in_method,
    yesNo(r.in_verified),
    r.in_exception,
    r.in_reason,
    yesNo(r.in_offline),
    ...place(r.out_lat, r.out_lon),
    r.out_method,
    yesNo(r.out_verified),
    r.out_exception,
    r.out_reason,
    yesNo(r.out_offline),
  ]);
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action: "evv.export",
      entityType: q.providerId ? "provider" : "resident",
      entityId: q.providerId ?? q.residentId ?? null,
      residentId: q.residentId ?? null,
      requestId: ctx.requestId,
      details: { from: q.from, to: q.to, rows: rows.length },
    },
    ctx.now,
  );
  return { rows: rows.length, csv: csvDocument(evvColumns, lines) };
}
