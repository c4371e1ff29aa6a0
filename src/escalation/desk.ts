// The operator desk: operators mark themselves on duty (the desk tier reaches them), claim an alert
// (acknowledge it as the desk) and hand it to another operator with a note at shift change.

import { addTimeline } from "../alerts/timeline";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { personForUser, queueMessage } from "../notifications/queue";
import type { RequestCtx } from "../request-ctx";
import { getSettings } from "../settings/settings.service";

type Ctx = RequestCtx & { actor: Actor };

export async function deskState(db: Executor) {
  const onDuty = await db
    .selectFrom("desk_duty as d")
    .innerJoin("users as u", "u.id", "d.user_id")
    .select(["d.user_id", "d.since", "u.display_name"])
    .orderBy("d.since")
    .execute();
  const counts = await db
    .selectFrom("alerts")
    .select(["status", "severity", (eb) => eb.fn.countAll<number>().as("n")])
    .where("closed_at", "is", null)
    .groupBy(["status", "severity"])
    .execute();
  return {
    onDuty: onDuty.map((d) => ({ userId: d.user_id, displayName: d.display_name, since: d.since })),
    openAlerts: counts.map((c) => ({ status: c.status, severity: c.severity, count: Number(c.n) })),
  };
}

export async function setDuty(db: Db, ctx: Ctx, onDuty: boolean) {
  if (onDuty) {
    await db
      .insertInto("desk_duty")
      .values({ user_id: ctx.actor.userId, since: iso(ctx.now) })
      .onConflict((oc) => oc.column("user_id").doNothing())
      .execute();
  } else {
    await db.deleteFrom("desk_duty").where("user_id", "=", ctx.actor.userId).execute();
  }
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action: onDuty ? "desk.on_duty" : "desk.off_duty",
      entityType: "user",
      entityId: ctx.actor.userId,
      requestId: ctx.requestId,
    },
    ctx.now,
  );
  return deskState(db);
}

/** Hands an alert the desk holds to another operator, who is told at once. */
export async function handOver(db: Db, ctx: Ctx, alertId: string, toUserId: string, note: string) {
  await db.transaction().execute(async (trx) => {
    const alert = await trx
      .selectFrom("alerts")
      .selectAll()
      .where("id", "=", alertId)
      .executeTakeFirst();
    if (!alert) throw notFound("the alert");
    if (alert.status !== "acknowledged") {
      throw new AppError(
        "invalid_state",
        "only an alert someone has taken charge of can be handed over",
      );
    }
    const target = await trx
      .selectFrom("user_roles")
      .innerJoin("users", "users.id", "user_roles.user_id")
      .select(["users.id", "users.display_name"])
      .where("user_roles.user_id", "=", toUserId)
      .where("user_roles.role", "=", "operator")
      .where("users.disabled_at", "is", null)
      .executeTakeFirst();
    if (!target) {
      throw new AppError("validation_failed", "an alert can be handed only to another operator", {
        issues: [{ path: "toUserId", message: "not an operator" }],
      });
    }
    if (target.id === alert.acknowledged_by) {
      throw new AppError("invalid_state", `${target.display_name} already holds this alert`);
    }
    await trx
      .updateTable("alerts")
      .set({
        acknowledged_by: target.id,
        acknowledged_phone: null,
        acknowledged_via: "desk",
        updated_at: iso(ctx.now),
      })
      .where("id", "=", alertId)
      .execute();
    await addTimeline(trx, alertId, ctx.now, "handed_over", ctx.actor.userId, {
      from: ctx.actor.displayName,
      to: target.display_name,
      toUserId: target.id,
      note,
    });
    await recordAudit(
      trx,
      {
        actorUserId: ctx.actor.userId,
        action: "alert.hand_over",
        entityType: "alert",
        entityId: alertId,
        residentId: alert.resident_id,
        requestId: ctx.requestId,
        details: { to: target.id },
      },
      ctx.now,
    );
    const person = await personForUser(trx, target.id);
    if (person) {
      await queueMessage(
        trx,
        person,
        {
          purpose: "desk_handover",
          message: { t: "desk_handover", alertId, fromName: ctx.actor.displayName },
          channels: ["push", "sms"],
          alertId,
          severity: alert.severity,
          dedupeKey: `alert:${alertId}:handover:${iso(ctx.now)}`,
          requireConfirmedPhone: true,
        },
        ctx.now,
        await getSettings(trx),
      );
    }
  });
}
