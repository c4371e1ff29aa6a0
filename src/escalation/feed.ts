// The server-sent events stream of alert changes. Events come from the database's alert feed, not
// from this process's memory, so a client that reconnects with its Last-Event-ID resumes without a
// gap, whichever kincare process it lands on. Operators see every alert; family members and
// workers the alerts of residents they are related to.
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { presentAlert } from "../alerts/alerts.service";
import type { Db, Executor } from "../db/database";
import type { Actor, AppEnv } from "../http/context";

const POLL_MS = 200;
const HEARTBEAT_MS = 15_000;
const REFRESH_ACCESS_MS = 10_000;
/**
 * On PostgreSQL a sequence number is taken before its transaction commits, so a later number can
 * become visible first. A hole is waited for this long before it is taken as a rollback's.
 */
const GAP_WAIT_MS = 2_000;

async function visibleResidents(db: Executor, actor: Actor): Promise<Set<string> | null> {
  if (actor.roles.includes("operator")) return null;
  const rows = await db
    .selectFrom("circle_members")
    .select("resident_id")
    .where("user_id", "=", actor.userId)
    .union(
      db.selectFrom("residents").select("id as resident_id").where("user_id", "=", actor.userId),
    )
    .execute();
  return new Set(rows.map((r) => r.resident_id));
}

async function latestSeq(db: Executor): Promise<number> {
  const row = await db
    .selectFrom("alert_feed")
    .select((eb) => eb.fn.max("seq").as("seq"))
    .executeTakeFirst();
  return Number(row?.seq ?? 0);
}

export function streamAlerts(
  c: Context<AppEnv>,
  db: Db,
  actor: Actor,
  resumeFrom: number | null,
  shutdown: AbortSignal,
) {
  return streamSSE(c, async (stream) => {
    let closed = false;
    stream.onAbort(() => {
      closed = true;
    });
    let last = resumeFrom ?? (await latestSeq(db));
    let visible = await visibleResidents(db, actor);
    let accessAt = Date.now();
    let beatAt = Date.now();
    let gapSince: number | undefined;
    // The first event says where the stream starts: open the stream, then load the list.
    await stream.writeSSE({
      event: "ready",
      id: String(last),
      data: JSON.stringify({ seq: last }),
    });
    while (!closed && !shutdown.aborted) {
      if (Date.now() - accessAt > REFRESH_ACCESS_MS) {
        visible = await visibleResidents(db, actor);
        accessAt = Date.now();
      }
      const rows = await db
        .selectFrom("alert_feed")
        .selectAll()
        .where("seq", ">", last)
        .orderBy("seq")
        .limit(200)
        .execute();
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seq !== last + 1) {
          gapSince ??= Date.now();
          if (Date.now() - gapSince < GAP_WAIT_MS) break;
        }
        gapSince = undefined;
        last = seq;
        if (visible && !visible.has(row.resident_id)) continue;
        const alert = await db
          .selectFrom("alerts")
          .selectAll()
          .where("id", "=", row.alert_id)
          .executeTakeFirst();
        if (!alert) continue;
        await stream.writeSSE({
          id: String(seq),
          event: "alert",
          data: JSON.stringify({ seq, type: row.type, at: row.at, alert: presentAlert(alert) }),
        });
        beatAt = Date.now();
      }
      if (Date.now() - beatAt > HEARTBEAT_MS) {
        await stream.write(": keep-alive\n\n");
        beatAt = Date.now();
      }
      if (rows.length < 200 || gapSince !== undefined) await stream.sleep(POLL_MS);
    }
  });
}
