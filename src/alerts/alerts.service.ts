// Alerts: raised by device events, vital rules and device health (later: visits); acknowledged
// by a person who takes charge, then resolved. Every step is on the alert's timeline.
import { authorizeResident } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError, notFound } from "../errors";
import { type AckEffects, acknowledge, acknowledgerForUser } from "../escalation/acknowledge";
import type { EscalationPolicy } from "../escalation/policy";
import { planEscalation, renotifyAcknowledger, scheduleStep } from "../escalation/start";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import type { RequestCtx } from "../request-ctx";
import type { AlertRow, AlertSeverity, AlertSource, AlertStatus } from "./alerts.table";
import { addTimeline } from "./timeline";

type Ctx = RequestCtx & { actor: Actor };

export interface RaiseAlert {
  residentId: string;
  kind: string;
  severity: AlertSeverity;
  sourceType: AlertSource;
  sourceId: string | null;
  /** Alerts sharing a key merge while open (a second SOS joins the first); null never merges. */
  openKey: string | null;
  summary: string;
  details?: Record<string, unknown>;
  /** A chain of its own instead of the resident's (a late visit goes to its provider first). */
  chain?: EscalationPolicy;
}

export interface Raised {
  alert: AlertRow;
  /** False when the event joined an alert already open. */
  created: boolean;
}

export async function findOpenAlert(db: Executor, residentId: string, openKey: string) {
  return db
    .selectFrom("alerts")
    .selectAll()
    .where("resident_id", "=", residentId)
    .where("open_key", "=", openKey)
    .where("closed_at", "is", null)
    .executeTakeFirst();
}

/** Opens an alert, or adds to the open one with the same key. Run it in the caller's transaction. */
export async function raiseAlert(db: Executor, input: RaiseAlert, now: Date): Promise<Raised> {
  const at = iso(now);
  if (input.openKey) {
    const open = await findOpenAlert(db, input.residentId, input.openKey);
    if (open) {
      const raise = severityRank(input.severity) > severityRank(open.severity);
      if (raise) {
        await db
          .updateTable("alerts")
          .set({ severity: input.severity, summary: input.summary, updated_at: at })
          .where("id", "=", open.id)
          .execute();
      }
      await addTimeline(db, open.id, now, raise ? "escalated" : "repeated", null, {
        sourceType: input.sourceType,
        sourceId: input.sourceId,
        severity: input.severity,
      });
      // Someone took charge and the resident presses again (or falls): tell that person now.
      if (open.status === "acknowledged" && (input.kind === "sos" || input.kind === "fall")) {
        await renotifyAcknowledger(db, open, input.sourceId, now);
      }
      return {
        alert: raise ? { ...open, severity: input.severity, summary: input.summary } : open,
        created: false,
      };
    }
  }
  const escalation = await planEscalation(db, input.residentId, input.chain);
  const row: AlertRow = {
    id: newId(),
    resident_id: input.residentId,
    kind: input.kind,
    severity: input.severity,
    status: "open",
    source_type: input.sourceType,
    source_id: input.sourceId,
    open_key: input.openKey,
    summary: input.summary,
    details: input.details ? JSON.stringify(input.details) : null,
    opened_at: at,
    updated_at: at,
    acknowledged_at: null,
    acknowledged_by: null,
    closed_at: null,
    closed_by: null,
    close_reason: null,
    chain: escalation.chain,
    step: 0,
    next_step_at: at,
    code: escalation.code,
    acknowledged_via: null,
    acknowledged_phone: null,
  };
  await db.insertInto("alerts").values(row).execute();
  await scheduleStep(db, row.id, 0, now, now, row.severity);
  await addTimeline(db, row.id, now, "raised", null, {
    sourceType: input.sourceType,
    sourceId: input.sourceId,
    severity: input.severity,
  });
  return { alert: row, created: true };
}

function severityRank(s: AlertSeverity): number {
  return s === "critical" ? 3 : s === "warning" ? 2 : 1;
}

/** Closes an open alert without a person: a warning that cleared, an SOS the resident cancelled. */
export async function closeAlert(
  db: Executor,
  alert: AlertRow,
  status: Extract<AlertStatus, "resolved" | "cancelled">,
  reason: string,
  now: Date,
  actorUserId: string | null = null,
  note?: string,
) {
  const updated = await db
    .updateTable("alerts")
    .set({
      status,
      closed_at: iso(now),
      closed_by: actorUserId,
      close_reason: reason,
      updated_at: iso(now),
    })
    .where("id", "=", alert.id)
    .where("closed_at", "is", null)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return false;
  await addTimeline(db, alert.id, now, status, actorUserId, { reason, ...(note ? { note } : {}) });
  return true;
}

export function presentAlert(a: AlertRow) {
  return {
    id: a.id,
    residentId: a.resident_id,
    kind: a.kind,
    severity: a.severity,
    status: a.status,
    sourceType: a.source_type,
    sourceId: a.source_id,
    summary: a.summary,
    details: a.details ? (JSON.parse(a.details) as Record<string, unknown>) : null,
    openedAt: a.opened_at,
    updatedAt: a.updated_at,
    acknowledgedAt: a.acknowledged_at,
    acknowledgedBy: a.acknowledged_by,
    closedAt: a.closed_at,
    closedBy: a.closed_by,
    closeReason: a.close_reason,
  };
}

async function authorizeAlert(
  db: Executor,
  actor: Actor,
  alertId: string,
  action: "viewAlerts" | "handleAlerts",
) {
  const alert = await db
    .selectFrom("alerts")
    .selectAll()
    .where("id", "=", alertId)
    .executeTakeFirst();
  if (!alert) throw notFound("the alert");
  await authorizeResident(db, actor, alert.resident_id, action);
  return alert;
}

export interface AlertQuery {
  residentId?: string | undefined;
  status?: AlertStatus[] | undefined;
  severity?: AlertSeverity | undefined;
  limit: number;
  before?: string | undefined;
}

/** Operators see every alert (the desk); others the alerts of residents they are related to. */
export async function listAlerts(db: Executor, ctx: Ctx, q: AlertQuery) {
  if (q.residentId) await authorizeResident(db, ctx.actor, q.residentId, "viewAlerts");
  let query = db.selectFrom("alerts").selectAll();
  if (q.residentId) query = query.where("resident_id", "=", q.residentId);
  else if (!ctx.actor.roles.includes("operator")) {
    const userId = ctx.actor.userId;
    query = query.where((eb) =>
      eb.or([
        eb(
          "resident_id",
          "in",
          eb.selectFrom("circle_members").select("resident_id").where("user_id", "=", userId),
        ),
        eb(
          "resident_id",
          "in",
          eb.selectFrom("residents").select("id").where("user_id", "=", userId),
        ),
      ]),
    );
  }
  if (q.status?.length) query = query.where("status", "in", q.status);
  if (q.severity) query = query.where("severity", "=", q.severity);
  if (q.before) query = query.where("id", "<", q.before);
  const rows = await query
    .orderBy("id", "desc")
    .limit(q.limit + 1)
    .execute();
  const page = rows.slice(0, q.limit);
  return {
    items: page.map(presentAlert),
    nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
  };
}

export async function getAlert(db: Executor, ctx: Ctx, alertId: string) {
  const alert = await authorizeAlert(db, ctx.actor, alertId, "viewAlerts");
  const timeline = await db
    .selectFrom("alert_timeline as t")
    .leftJoin("users as u", "u.id", "t.actor_user_id")
    .select(["t.id", "t.at", "t.type", "t.actor_user_id", "u.display_name", "t.details"])
    .where("t.alert_id", "=", alertId)
    .orderBy("t.at")
    .orderBy("t.id")
    .execute();
  return {
    ...presentAlert(alert),
    timeline: timeline.map((e) => ({
      id: e.id,
      at: e.at,
      type: e.type,
      actor: e.actor_user_id ? { id: e.actor_user_id, displayName: e.display_name ?? "" } : null,
      details: e.details ? (JSON.parse(e.details) as Record<string, unknown>) : null,
    })),
  };
}

/**
 * A person takes charge through the API. The first acknowledgement wins (a second is told who
 * was first); it stops every pending step and gives that person the resident's access notes.
 */
export async function acknowledgeAlert(
  db: Db,
  ctx: Ctx,
  alertId: string,
  note: string | undefined,
  effects: AckEffects,
) {
  await authorizeAlert(db, ctx.actor, alertId, "handleAlerts");
  const done = await acknowledge(
    db,
    effects,
    {
      alertId,
      by: await acknowledgerForUser(db, ctx.actor.userId),
      via: ctx.actor.roles.includes("operator") ? "desk" : "api",
      note,
      requestId: ctx.requestId,
    },
    ctx.now,
  );
  return { ...(await getAlert(db, ctx, alertId)), accessNotes: done.accessNotes };
}

export const resolveOutcomes = [
  "false_alarm",
  "helped_at_home",
  "ambulance_called",
  "doctor_called",
  "taken_to_hospital",
  "no_action_needed",
  "other",
] as const;
export type ResolveOutcome = (typeof resolveOutcomes)[number];

/** Resolving needs the alert acknowledged first for critical alerts: a person must have taken charge. */
export async function resolveAlert(
  db: Db,
  ctx: Ctx,
  alertId: string,
  outcome: ResolveOutcome,
  note: string | undefined,
) {
  await db.transaction().execute(async (trx) => {
    const alert = await authorizeAlert(trx, ctx.actor, alertId, "handleAlerts");
    if (alert.closed_at)
      throw new AppError("invalid_state", `this alert is already ${alert.status}`);
    if (alert.severity === "critical" && alert.status === "open") {
      await trx
        .updateTable("alerts")
        .set({ acknowledged_at: iso(ctx.now), acknowledged_by: ctx.actor.userId })
        .where("id", "=", alertId)
        .execute();
      await addTimeline(trx, alertId, ctx.now, "acknowledged", ctx.actor.userId, {
        by: ctx.actor.displayName,
        via: "resolve",
      });
    }
    await closeAlert(trx, alert, "resolved", outcome, ctx.now, ctx.actor.userId, note);
    await recordAudit(
      trx,
      {
        actorUserId: ctx.actor.userId,
        action: "alert.resolve",
        entityType: "alert",
        entityId: alertId,
        residentId: alert.resident_id,
        requestId: ctx.requestId,
      },
      ctx.now,
    );
  });
  return getAlert(db, ctx, alertId);
}

export async function addNote(db: Db, ctx: Ctx, alertId: string, note: string) {
  await db.transaction().execute(async (trx) => {
    const alert = await authorizeAlert(trx, ctx.actor, alertId, "handleAlerts");
    await addTimeline(trx, alert.id, ctx.now, "note", ctx.actor.userId, { note });
  });
  return getAlert(db, ctx, alertId);
}
