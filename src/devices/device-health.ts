// Device health: when each device was last heard from, its battery and signal, and the
// "device offline" alert raised when it falls silent (or its Last Will says offline) and
// resolved when it is heard again.

import { PostgresAdapter, sql } from "kysely";
import { closeAlert, raiseAlert } from "../alerts/alerts.service";
import { addMs } from "../clock";
import type { Executor } from "../db/database";

export const deviceOfflineKey = (deviceId: string) => `device_offline:${deviceId}`;

export interface Seen {
  deviceId: string;
  at: string;
  battery?: number | null;
  rssi?: number | null;
  connection?: "online" | "offline";
}

/**
 * Records when devices were last heard from, in one statement for all of them: every few seconds
 * ingest hands over a thousand devices at once, and one update each cost more than the readings.
 */
export async function markDevicesSeen(db: Executor, seen: Seen[], now: Date): Promise<void> {
  if (seen.length === 0) return;
  // The latest news per device: one device updated twice by one statement is left undefined.
  const latest = new Map<string, Seen>();
  for (const s of seen) {
    const known = latest.get(s.deviceId);
    if (!known || known.at <= s.at) latest.set(s.deviceId, s);
  }
  const rows = JSON.stringify(
    [...latest.values()].map((s) => [
      s.deviceId,
      s.at,
      s.connection ?? "online",
      s.battery ?? null,
      s.rssi ?? null,
    ]),
  );
  // Older news than what is stored (a Last Will already recorded) changes nothing.
  const { rows: updated } = await (db.getExecutor().adapter instanceof PostgresAdapter
    ? sql<{ id: string }>`
        update devices set last_seen_at = r->>1, connection = r->>2,
          battery = coalesce((r->>3)::double precision, devices.battery),
          rssi = coalesce((r->>4)::double precision, devices.rssi)
        from jsonb_array_elements(${rows}::jsonb) as r
        where devices.id = r->>0
          and (devices.last_seen_at is null or devices.last_seen_at <= r->>1)
        returning devices.id`
    : sql<{ id: string }>`
        update devices set last_seen_at = r.value->>1, connection = r.value->>2,
          battery = coalesce(r.value->>3, devices.battery),
          rssi = coalesce(r.value->>4, devices.rssi)
        from json_each(${rows}) as r
        where devices.id = r.value->>0
          and (devices.last_seen_at is null or devices.last_seen_at <= r.value->>1)
        returning devices.id`
  ).execute(db);
  const applied = updated.map((r) => latest.get(r.id)!);
  const offline = applied.filter((s) => s.connection === "offline");
  const back = applied.filter((s) => s.connection !== "offline");
  if (back.length > 0) {
    const open = await db
      .selectFrom("alerts")
      .selectAll()
      .where(
        "open_key",
        "in",
        back.map((s) => deviceOfflineKey(s.deviceId)),
      )
      .where("closed_at", "is", null)
      .execute();
    for (const alert of open)
      await closeAlert(db, alert, "resolved", "the device is back online", now);
  }
  for (const s of offline)
    await raiseOffline(db, s.deviceId, "the device said it went offline (its Last Will)", now);
}

async function raiseOffline(db: Executor, deviceId: string, why: string, now: Date) {
  const device = await db
    .selectFrom("devices")
    .select(["resident_id", "kind", "status"])
    .where("id", "=", deviceId)
    .executeTakeFirst();
  if (device?.status !== "active") return;
  await raiseAlert(
    db,
    {
      residentId: device.resident_id,
      kind: "device_offline",
      severity: "warning",
      sourceType: "device_health",
      sourceId: deviceId,
      openKey: deviceOfflineKey(deviceId),
      summary: `A ${device.kind.replace(/_/g, " ")} stopped reporting`,
      details: { deviceId, why },
    },
    now,
  );
}

/**
 * Finds active devices silent for more than twice their heartbeat interval and raises
 * "device offline" for each. Run by a durable job every minute.
 */
export async function sweepSilentDevices(db: Executor, now: Date): Promise<number> {
  const candidates = await db
    .selectFrom("devices")
    .select(["id", "last_seen_at", "heartbeat_interval_s"])
    .where("status", "=", "active")
    .where("connection", "=", "online")
    .where("last_seen_at", "is not", null)
    .execute();
  let raised = 0;
  for (const d of candidates) {
    const deadline = addMs(new Date(d.last_seen_at!), 2 * d.heartbeat_interval_s * 1000);
    if (deadline >= now) continue;
    await db
      .updateTable("devices")
      .set({ connection: "offline" })
      .where("id", "=", d.id)
      .where("last_seen_at", "=", d.last_seen_at)
      .execute();
    await raiseOffline(
      db,
      d.id,
      `nothing heard since ${d.last_seen_at} (heartbeat every ${d.heartbeat_interval_s} s)`,
      now,
    );
    raised++;
  }
  return raised;
}
