// An alert's timeline: every step, in order, for the people handling it and for the record.
// Each entry also lands in the alert feed, the ordered log every kincare process streams from.
import { iso } from "../clock";
import type { Executor } from "../db/database";
import { newId } from "../ids";

export async function addTimeline(
  db: Executor,
  alertId: string,
  at: Date | string,
  type: string,
  actorUserId: string | null,
  details?: Record<string, unknown>,
) {
  const when = typeof at === "string" ? at : iso(at);
  await db
    .insertInto("alert_timeline")
    .values({
      id: newId(),
      alert_id: alertId,
      at: when,
      type,
      actor_user_id: actorUserId,
      details: details ? JSON.stringify(details) : null,
    })
    .execute();
  await db
    .insertInto("alert_feed")
    .columns(["alert_id", "resident_id", "type", "at"])
    .expression((eb) =>
      eb
        .selectFrom("alerts")
        .select((s) => ["id", "resident_id", s.val(type).as("type"), s.val(when).as("at")])
        .where("id", "=", alertId),
    )
    .execute();
}
