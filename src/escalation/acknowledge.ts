// Someone takes charge: from the API, the push page, an SMS reply, or the operator desk. The
// first acknowledgement wins and, in the same transaction, cancels every message of the chain
// not yet sent; then the circle hears who is handling it, that person gets the resident's access
// notes (audited), and the pressing device hears `sos_ack`.

import type { AlertRow } from "../alerts/alerts.table";
import { addTimeline } from "../alerts/timeline";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError } from "../errors";
import { personForUser, queueMessage } from "../notifications/queue";
import { getSettings } from "../settings/settings.service";
import { addTo, peopleReached } from "./reached";

export type AckVia = "api" | "push" | "sms" | "desk";

export interface Acknowledger {
  userId: string | null;
  /** A bare phone number (an emergency contact without an account). */
  phone: string | null;
  name: string;
}

export interface Acknowledged {
  alert: AlertRow;
  accessNotes: string | null;
  residentName: string;
}

export interface AckEffects {
  /** Tells the device that raised an SOS that a person took charge. */
  sendDeviceAck(deviceId: string, alertId: string, byName: string): void;
  /** Deliveries were queued: run them now. */
  nudge(): void;
}

export async function acknowledge(
  db: Db,
  effects: AckEffects,
  input: {
    alertId: string;
    by: Acknowledger;
    via: AckVia;
    note?: string | undefined;
    requestId?: string | null;
  },
  now: Date,
): Promise<Acknowledged> {
  const result = await db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable("alerts")
      .set({
        status: "acknowledged",
        acknowledged_at: iso(now),
        acknowledged_by: input.by.userId,
        acknowledged_phone: input.by.userId ? null : input.by.phone,
        acknowledged_via: input.via,
        next_step_at: null,
        updated_at: iso(now),
      })
      .where("id", "=", input.alertId)
      .where("status", "=", "open")
      .returningAll()
      .executeTakeFirst();
    if (!updated) throw await alreadyHandled(trx, input.alertId);
    const cancelled = await trx
      .updateTable("deliveries")
      .set({
        status: "cancelled",
        error_reason: "someone took charge of the alert before this left",
        updated_at: iso(now),
      })
      .where("alert_id", "=", input.alertId)
      .where("purpose", "=", "alert_step")
      .where("status", "in", ["pending", "retrying", "bundled", "capped"])
      .executeTakeFirst();
    await addTimeline(trx, input.alertId, now, "acknowledged", input.by.userId, {
      by: input.by.name,
      via: input.via,
      ...(input.note ? { note: input.note } : {}),
      pendingCancelled: Number(cancelled.numUpdatedRows),
    });
    const resident = await trx
      .selectFrom("residents")
      .select(["full_name", "preferred_name", "access_notes"])
      .where("id", "=", updated.resident_id)
      .executeTakeFirstOrThrow();
    for (const action of ["alert.acknowledge", "resident.access_notes.read"]) {
      await recordAudit(
        trx,
        {
          actorUserId: input.by.userId,
          action,
          entityType: action === "alert.acknowledge" ? "alert" : "resident",
          entityId: action === "alert.acknowledge" ? input.alertId : updated.resident_id,
          residentId: updated.resident_id,
          requestId: input.requestId ?? null,
          details: { via: input.via, ...(input.by.userId ? {} : { phone: input.by.phone }) },
        },
        now,
      );
    }
    await tellTheOthers(trx, updated, input.by, now);
    return {
      alert: updated,
      accessNotes: resident.access_notes,
      residentName: resident.preferred_name ?? resident.full_name,
    };
  });
  effects.nudge();
  const deviceId = result.alert.kind === "sos" ? result.alert.source_id?.split(":")[0] : undefined;
  if (deviceId && result.alert.source_type === "device_event") {
    effects.sendDeviceAck(deviceId, result.alert.id, input.by.name);
  }
  return result;
}

async function alreadyHandled(db: Executor, alertId: string): Promise<AppError> {
  const alert = await db
    .selectFrom("alerts as a")
    .leftJoin("users as u", "u.id", "a.acknowledged_by")
    .select([
      "a.status",
      "a.acknowledged_by",
      "a.acknowledged_at",
      "a.acknowledged_phone",
      "u.display_name",
    ])
    .where("a.id", "=", alertId)
    .executeTakeFirst();
  if (!alert) return new AppError("not_found", "the alert was not found");
  if (alert.status !== "acknowledged") {
    return new AppError("invalid_state", `this alert is already ${alert.status}`);
  }
  const who = alert.display_name ?? alert.acknowledged_phone ?? "someone";
  return new AppError("conflict", `${who} has already taken charge of this alert`, {
    acknowledgedBy: alert.acknowledged_by,
    acknowledgedAt: alert.acknowledged_at,
  });
}

/** Everyone the chain reached, and the rest of the circle, hears who took charge. */
async function tellTheOthers(db: Executor, alert: AlertRow, by: Acknowledger, now: Date) {
  const audience = await peopleReached(db, alert);
  const circle = await db
    .selectFrom("circle_members")
    .select("user_id")
    .where("resident_id", "=", alert.resident_id)
    .execute();
  for (const member of circle) addTo(audience, await personForUser(db, member.user_id), "push");
  const settings = await getSettings(db);
  for (const { person, channels } of audience.values()) {
    const isAcknowledger = by.userId ? person.userId === by.userId : person.phone === by.phone;
    if (isAcknowledger) continue;
    await queueMessage(
      db,
      person,
      {
        purpose: "alert_handled",
        message: { t: "alert_handled", alertId: alert.id, byName: by.name },
        channels: [...channels],
        alertId: alert.id,
        dedupeKey: `alert:${alert.id}:handled`,
        requireConfirmedPhone: true,
      },
      now,
      settings,
    );
  }
}

/** The acknowledger as a person: a user by id, or whoever owns a confirmed phone number. */
export async function acknowledgerForUser(db: Executor, userId: string): Promise<Acknowledger> {
  const person = await personForUser(db, userId);
  return { userId, phone: person?.phone ?? null, name: person?.name ?? "someone" };
}
