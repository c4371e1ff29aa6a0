// Check-in and check-out: the proof that a visit happened. Each entry records the six elements of
// electronic visit verification (type of service, person served, date, location, person serving,
// start and end time) and how it was proven; an entry without proof is kept, as an exception
// with the worker's reason, and flagged to the provider and the family. Each entry carries a
// client-made id, so an offline queue replayed twice records it once. Check-out needs an outcome
// for every task and medication due, notes and a wellbeing report, and verifies the visit.
import { closeAlert, findOpenAlert } from "../alerts/alerts.service";
import { recordAudit } from "../audit/audit.service";
import { markVisitVerified } from "../bookings/bookings.service";
import type { VisitRow } from "../bookings/bookings.table";
import { currentPlan } from "../careplans/careplans.service";
import { haversineKm } from "../catalog/catalog.repository";
import { iso } from "../clock";
import type { Db, Executor, Trx } from "../db/database";
import { AppError } from "../errors";
import { newId } from "../ids";
import { tellFamily, tellProvider } from "../notifications/audiences";
import { formatTime } from "../notifications/templates";
import type { ResidentRow } from "../residents/residents.table";
import { getSettings, type Settings } from "../settings/settings.service";
import { type DueItem, itemKey } from "./due";
import {
  type Ctx,
  countFailure,
  judgeCode,
  lockVisit,
  presentEntry,
  presentItems,
  residentName,
  visitAccess,
  visitItems,
} from "./visits.service";
import type { EntryKind, Outcome, VerificationMethod, VisitEntryRow } from "./visits.table";

export interface Position {
  latitude: number;
  longitude: number;
  /** The phone's reported accuracy, metres (the radius of its 68% circle). */
  accuracy: number;
}

export interface EntryInput {
  clientId: string;
  /** When it happened by the phone's clock; absent: now. */
  occurredAt?: string | undefined;
  /** The phone says it was captured without a connection. */
  capturedOffline?: boolean | undefined;
  position?: Position | undefined;
  code?: string | undefined;
  exceptionReason?: string | undefined;
}

export interface OutcomeInput {
  kind: "task" | "medication";
  itemId: string;
  dueTime: string;
  outcome: Outcome;
  reason?: string | undefined;
}

export interface CheckOutInput extends EntryInput {
  outcomes?: OutcomeInput[] | undefined;
  notes: string;
  wellbeing: { mood: string; appetite: string; concerns: string };
  durationComment?: string | undefined;
}

/** How far ahead of the start a worker may check in, and how far a phone's clock may run fast. */
const EARLY_CHECK_IN_MS = 60 * 60_000;
const CLOCK_SKEW_MS = 2 * 60_000;
const OLDEST_OFFLINE_MS = 7 * 24 * 3_600_000;

interface Proof {
  method: VerificationMethod;
  verified: boolean;
  distanceM: number | null;
  exception: "outside_radius" | "position_too_vague" | "no_proof" | null;
}

/** What an entry records: the proof, or an offline entry flagged for arriving after settlement. */
type Recorded = Omit<Proof, "exception"> & {
  exception: Proof["exception"] | "after_settlement";
};

/**
 * Judges the proof: a code first (it cannot be faked from afar), then the position. A fix whose
 * circle reaches into the radius counts, unless the fix is vaguer than the radius itself (a cell
 * tower's guess proves nothing about a doorstep).
 */
async function judgeProof(
  trx: Executor,
  visit: VisitRow,
  resident: ResidentRow,
  input: EntryInput,
  capturedAt: Date,
  now: Date,
  settings: Settings,
): Promise<Proof> {
  const distanceM = input.position
    ? haversineKm(
        resident.latitude,
        resident.longitude,
        input.position.latitude,
        input.position.longitude,
      ) * 1000
    : null;
  if (input.code) {
    const { method } = await judgeCode(trx, visit.id, input.code, capturedAt, now);
    return { method, verified: true, distanceM, exception: null };
  }
  if (input.position && distanceM !== null) {
    const radius = settings["visits.checkin_radius_m"];
    if (input.position.accuracy > radius) {
      return { method: "gps", verified: false, distanceM, exception: "position_too_vague" };
    }
    if (distanceM - input.position.accuracy > radius) {
      return { method: "gps", verified: false, distanceM, exception: "outside_radius" };
    }
    return { method: "gps", verified: true, distanceM, exception: null };
  }
  return { method: "none", verified: false, distanceM: null, exception: "no_proof" };
}

function capturedAtOf(input: EntryInput, now: Date): Date {
  if (!input.occurredAt) return now;
  const at = new Date(input.occurredAt);
  if (at.getTime() > now.getTime() + CLOCK_SKEW_MS) {
    throw new AppError("validation_failed", "occurredAt is in the future", {
      issues: [{ path: "occurredAt", message: "later than now: check the phone's clock" }],
    });
  }
  if (now.getTime() - at.getTime() > OLDEST_OFFLINE_MS) {
    throw new AppError("validation_failed", "occurredAt is more than 7 days ago", {
      issues: [{ path: "occurredAt", message: "too old to be accepted as a visit record" }],
    });
  }
  return at;
}

/** Thrown when a concurrent twin of this entry got there first: the caller answers with it. */
class Duplicate extends Error {
  constructor(readonly entry: VisitEntryRow) {
    super("duplicate entry");
  }
}

/** The entry already made with this client id, if any (a retry or a replayed offline queue). */
async function earlier(db: Executor, ctx: Ctx, visitId: string, kind: EntryKind, clientId: string) {
  const found = await db
    .selectFrom("visit_entries")
    .selectAll()
    .where("created_by", "=", ctx.actor.userId)
    .where("client_id", "=", clientId)
    .executeTakeFirst();
  if (found && (found.visit_id !== visitId || found.kind !== kind)) {
    throw new AppError("conflict", "this clientId was already used for another entry");
  }
  return found;
}

async function insertEntry(
  trx: Trx,
  ctx: Ctx,
  loaded: { visit: VisitRow; resident: ResidentRow; service: { category: string } },
  kind: EntryKind,
  input: EntryInput,
  capturedAt: Date,
  proof: Recorded,
  settings: Settings,
  extra: Partial<Pick<VisitEntryRow, "notes" | "wellbeing" | "duration_comment">> = {},
): Promise<VisitEntryRow> {
  const { visit } = loaded;
  const worker = await trx
    .selectFrom("workers")
    .select(["id", "legal_name"])
    .where("id", "=", visit.worker_id!)
    .executeTakeFirstOrThrow();
  const offline =
    input.capturedOffline === true ||
    ctx.now.getTime() - capturedAt.getTime() > settings["visits.offline_after_minutes"] * 60_000;
  const row: VisitEntryRow = {
    id: newId(),
    visit_id: visit.id,
    resident_id: visit.resident_id,
    provider_id: visit.provider_id,
    worker_id: worker.id,
    worker_name: worker.legal_name,
    service_type: loaded.service.category,
    kind,
    client_id: input.clientId,
    occurred_at: iso(capturedAt),
    received_at: iso(ctx.now),
    offline: offline ? 1 : 0,
    method: proof.method,
    verified: proof.verified ? 1 : 0,
    latitude: input.position?.latitude ?? null,
    longitude: input.position?.longitude ?? null,
    accuracy_m: input.position?.accuracy ?? null,
    distance_m: proof.distanceM,
    exception: proof.exception,
    exception_reason: proof.exception ? (input.exceptionReason ?? null) : null,
    notes: extra.notes ?? null,
    wellbeing: extra.wellbeing ?? null,
    duration_comment: extra.duration_comment ?? null,
    created_by: ctx.actor.userId,
    created_at: iso(ctx.now),
  };
  const inserted = await trx
    .insertInto("visit_entries")
    .values(row)
    .onConflict((oc) => oc.columns(["visit_id", "kind"]).doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
    // The same entry sent twice at once: the other request recorded it.
    const twin = await earlier(trx, ctx, visit.id, kind, input.clientId);
    if (twin) throw new Duplicate(twin);
    throw new AppError(
      "invalid_state",
      kind === "check_in"
        ? "this visit is already checked in"
        : "this visit is already checked out",
    );
  }
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: `visit.${kind}`,
      entityType: "visit",
      entityId: visit.id,
      residentId: visit.resident_id,
      requestId: ctx.requestId,
      details: {
        method: proof.method,
        verified: proof.verified,
        offline,
        exception: proof.exception,
      },
    },
    ctx.now,
  );
  return row;
}

/** The family hears who came and went; an exception goes to the provider and the family. */
async function announce(
  trx: Executor,
  resident: ResidentRow,
  entry: VisitEntryRow,
  now: Date,
  tasks?: { done: number; due: number },
) {
  await tellFamily(
    trx,
    resident.id,
    {
      purpose: "visit_entry",
      message: {
        t: "visit_entry",
        residentName: residentName(resident),
        workerName: entry.worker_name,
        kind: entry.kind,
        at: entry.occurred_at,
        ...(tasks ?? {}),
      },
      dedupeKey: `visit-entry:${entry.id}`,
      channels: ["push"],
    },
    now,
  );
  if (entry.exception) {
    const notice = {
      purpose: "visit_exception",
      message: {
        t: "visit_exception" as const,
        residentName: residentName(resident),
        workerName: entry.worker_name,
        kind: entry.kind,
        exception: entry.exception,
        reason: entry.exception_reason ?? "",
        at: entry.occurred_at,
      },
      dedupeKey: `visit-exception:${entry.id}`,
      channels: ["push" as const],
    };
    await tellFamily(trx, resident.id, notice, now, { primariesOnly: true });
    await tellProvider(trx, entry.provider_id, notice, now);
  }
}

function requireReason(proof: Proof, input: EntryInput) {
  if (proof.exception && !input.exceptionReason?.trim()) {
    const why = {
      outside_radius: `you are about ${Math.round(proof.distanceM ?? 0)} m from the home`,
      position_too_vague: "the phone's position is too vague to place you at the home",
      no_proof: "there is no position or code to prove you are at the home",
    }[proof.exception];
    throw new AppError(
      "reason_required",
      `${why}: give a reason (exceptionReason) and the entry is kept as an exception`,
      { field: "exceptionReason", exception: proof.exception, distanceMeters: proof.distanceM },
    );
  }
}

/** Runs an entry; a wrong code is counted in its own transaction (the entry's rolls back). */
async function withCodeCount<T>(
  db: Db,
  visitId: string,
  now: Date,
  run: () => Promise<T>,
): Promise<T | { entry: ReturnType<typeof presentEntry>; duplicate: true; verified?: boolean }> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof Duplicate) return { entry: presentEntry(error.entry), duplicate: true };
    if (error instanceof AppError && error.code === "code_invalid") {
      await countFailure(db, visitId, now);
    }
    throw error;
  }
}

export async function checkIn(db: Db, ctx: Ctx, visitId: string, input: EntryInput) {
  return withCodeCount(db, visitId, ctx.now, () =>
    db.transaction().execute(async (trx) => {
      await lockVisit(trx, visitId);
      const before = await earlier(trx, ctx, visitId, "check_in", input.clientId);
      if (before) return { entry: presentEntry(before), duplicate: true };
      const loaded = await visitAccess(
        trx,
        ctx.actor,
        visitId,
        ["worker"],
        "check in to this visit",
      );
      const { visit, resident } = loaded;
      const capturedAt = capturedAtOf(input, ctx.now);
      // An offline check-in that reaches kincare after the visit was refunded as missed (or
      // cancelled): the worker was there, so the home's entry log keeps it, flagged, and the
      // money stays where it went for the provider and an operator to sort out.
      const afterSettlement =
        (visit.status === "refunded" || visit.status === "cancelled") &&
        visit.settled_at !== null &&
        capturedAt.toISOString() < visit.settled_at &&
        !visit.checked_in_at;
      if (visit.status !== "scheduled" && !afterSettlement) {
        throw new AppError("invalid_state", `this visit is ${visit.status}`);
      }
      if (visit.checked_in_at)
        throw new AppError("invalid_state", "this visit is already checked in");
      const settings = await getSettings(trx);
      const earliest = Date.parse(visit.starts_at) - EARLY_CHECK_IN_MS;
      const latest = Date.parse(visit.ends_at) + settings["visits.open_after_minutes"] * 60_000;
      if (capturedAt.getTime() < earliest || capturedAt.getTime() > latest) {
        throw new AppError(
          "invalid_state",
          `this visit is at ${formatTime(visit.starts_at, resident.time_zone, "en")}: check in when you are there`,
        );
      }
      const proof = await judgeProof(trx, visit, resident, input, capturedAt, ctx.now, settings);
      requireReason(proof, input);
      const entry = await insertEntry(
        trx,
        ctx,
        loaded,
        "check_in",
        input,
        capturedAt,
        afterSettlement ? { ...proof, exception: "after_settlement" } : proof,
        settings,
      );
      if (afterSettlement) {
        await announce(trx, resident, entry, ctx.now);
        return { entry: presentEntry(entry), duplicate: false, afterSettlement: true };
      }
      const plan = await currentPlan(trx, visit.resident_id).catch(() => null);
      const marked = await trx
        .updateTable("visits")
        .set({
          checked_in_at: entry.occurred_at,
          plan_version: plan?.version ?? null,
          updated_at: iso(ctx.now),
        })
        .where("id", "=", visit.id)
        .where("status", "=", "scheduled")
        .where("checked_in_at", "is", null)
        .executeTakeFirst();
      if (Number(marked.numUpdatedRows) === 0) {
        throw new AppError("invalid_state", "this visit changed meanwhile: look at it again");
      }
      // The worker came: a late or missed alert about this visit is over.
      for (const key of [`visit-late:${visit.id}`, `visit-missed:${visit.id}`]) {
        const open = await findOpenAlert(trx, visit.resident_id, key);
        if (open) {
          await closeAlert(
            trx,
            open,
            "resolved",
            `${entry.worker_name} checked in at ${formatTime(entry.occurred_at, resident.time_zone, "en")}`,
            ctx.now,
          );
        }
      }
      await announce(trx, resident, entry, ctx.now);
      return { entry: presentEntry(entry), duplicate: false };
    }),
  );
}

/** Validates outcomes against what is due and stores them (a later one replaces an earlier). */
async function storeOutcomes(
  trx: Executor,
  ctx: Ctx,
  visitId: string,
  due: DueItem[],
  outcomes: OutcomeInput[],
) {
  const dueByKey = new Map(due.map((d) => [itemKey(d), d]));
  const issues = outcomes.flatMap((o, i) => {
    const problems = [];
    if (!dueByKey.has(itemKey(o)))
      problems.push({
        path: `outcomes.${i}`,
        message: `${o.kind} ${o.itemId} is not due at ${o.dueTime || "this visit"}`,
      });
    if (o.outcome !== "done" && !o.reason?.trim())
      problems.push({
        path: `outcomes.${i}.reason`,
        message: "give a reason when it was not done",
      });
    return problems;
  });
  if (issues.length > 0)
    throw new AppError("validation_failed", "some outcomes cannot be recorded", { issues });
  for (const o of outcomes) {
    const item = dueByKey.get(itemKey(o))!;
    const values = {
      outcome: o.outcome,
      reason: o.outcome === "done" ? o.reason?.trim() || null : o.reason!.trim(),
      recorded_at: iso(ctx.now),
      recorded_by: ctx.actor.userId,
    };
    await trx
      .insertInto("visit_outcomes")
      .values({
        visit_id: visitId,
        item_kind: o.kind,
        item_id: o.itemId,
        due_time: o.dueTime,
        title: item.title,
        ...values,
      })
      .onConflict((oc) =>
        oc.columns(["visit_id", "item_kind", "item_id", "due_time"]).doUpdateSet(values),
      )
      .execute();
  }
}

/** The worker ticks off tasks and medications during the visit. */
export async function recordOutcomes(db: Db, ctx: Ctx, visitId: string, outcomes: OutcomeInput[]) {
  return db.transaction().execute(async (trx) => {
    await lockVisit(trx, visitId);
    const { visit, resident } = await visitAccess(
      trx,
      ctx.actor,
      visitId,
      ["worker"],
      "record outcomes",
    );
    if (!visit.checked_in_at || visit.checked_out_at || visit.status !== "scheduled") {
      throw new AppError("invalid_state", "outcomes are recorded between check-in and check-out");
    }
    const { items } = await visitItems(trx, visit, resident.time_zone);
    await storeOutcomes(trx, ctx, visitId, items, outcomes);
    const stored = await trx
      .selectFrom("visit_outcomes")
      .selectAll()
      .where("visit_id", "=", visitId)
      .execute();
    return { items: presentItems(items, stored) };
  });
}

export async function checkOut(db: Db, ctx: Ctx, visitId: string, input: CheckOutInput) {
  return withCodeCount(db, visitId, ctx.now, () =>
    db.transaction().execute(async (trx) => {
      await lockVisit(trx, visitId);
      const before = await earlier(trx, ctx, visitId, "check_out", input.clientId);
      if (before) return { entry: presentEntry(before), duplicate: true, verified: true };
      const loaded = await visitAccess(
        trx,
        ctx.actor,
        visitId,
        ["worker"],
        "check out of this visit",
      );
      const { visit, resident } = loaded;
      if (!visit.checked_in_at) throw new AppError("invalid_state", "check in before checking out");
      if (visit.checked_out_at || visit.status !== "scheduled") {
        throw new AppError("invalid_state", "this visit is already checked out");
      }
      const capturedAt = capturedAtOf(input, ctx.now);
      if (capturedAt.toISOString() < visit.checked_in_at) {
        throw new AppError("validation_failed", "the check-out is before the check-in", {
          issues: [{ path: "occurredAt", message: "earlier than the check-in" }],
        });
      }
      const settings = await getSettings(trx);
      const { items } = await visitItems(trx, visit, resident.time_zone);
      await storeOutcomes(trx, ctx, visitId, items, input.outcomes ?? []);
      const stored = await trx
        .selectFrom("visit_outcomes")
        .selectAll()
        .where("visit_id", "=", visitId)
        .execute();
      const recorded = new Set(
        stored.map((o) => itemKey({ kind: o.item_kind, itemId: o.item_id, dueTime: o.due_time })),
      );
      const missing = items.filter((i) => !recorded.has(itemKey(i)));
      if (missing.length > 0) {
        throw new AppError(
          "outcomes_required",
          `give an outcome for every task and medication first: ${missing.length} still open`,
          {
            missing: missing.map((m) => ({
              kind: m.kind,
              itemId: m.itemId,
              dueTime: m.dueTime,
              title: m.title,
            })),
          },
        );
      }
      const planned = Date.parse(visit.ends_at) - Date.parse(visit.starts_at);
      const actual = capturedAt.getTime() - Date.parse(visit.checked_in_at);
      const offByMinutes = Math.round(Math.abs(actual - planned) / 60_000);
      if (
        offByMinutes > settings["visits.duration_tolerance_minutes"] &&
        !input.durationComment?.trim()
      ) {
        throw new AppError(
          "reason_required",
          `the visit lasted ${Math.round(actual / 60_000)} minutes against ${Math.round(planned / 60_000)} planned: add a comment (durationComment)`,
          {
            field: "durationComment",
            actualMinutes: Math.round(actual / 60_000),
            plannedMinutes: Math.round(planned / 60_000),
          },
        );
      }
      const proof = await judgeProof(trx, visit, resident, input, capturedAt, ctx.now, settings);
      requireReason(proof, input);
      const entry = await insertEntry(
        trx,
        ctx,
        loaded,
        "check_out",
        input,
        capturedAt,
        proof,
        settings,
        {
          notes: input.notes,
          wellbeing: JSON.stringify(input.wellbeing),
          duration_comment: input.durationComment?.trim() || null,
        },
      );
      await trx
        .updateTable("visits")
        .set({ checked_out_at: entry.occurred_at, updated_at: iso(ctx.now) })
        .where("id", "=", visit.id)
        .execute();
      // Every outcome is recorded: the visit is verified and the family's review window opens.
      await markVisitVerified(trx, visit.id, ctx.now);
      const open = await findOpenAlert(trx, visit.resident_id, `visit-open:${visit.id}`);
      if (open) {
        await closeAlert(trx, open, "resolved", `${entry.worker_name} checked out`, ctx.now);
      }
      const done = stored.filter((o) => o.outcome === "done").length;
      await announce(trx, resident, entry, ctx.now, { done, due: items.length });
      return { entry: presentEntry(entry), duplicate: false, verified: true };
    }),
  );
}

/** The home's entry log: who came in and went out, and when. */
export async function entryLog(
  db: Executor,
  residentId: string,
  range: { from: string; to: string },
) {
  const rows = await db
    .selectFrom("visit_entries")
    .selectAll()
    .where("resident_id", "=", residentId)
    .where("occurred_at", ">=", range.from)
    .where("occurred_at", "<", range.to)
    .orderBy("occurred_at", "desc")
    .limit(1000)
    .execute();
  return rows.map(presentEntry);
}
