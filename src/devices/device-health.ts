// Device health: when each device was last heard from, its battery and signal, and the
// "device offline" alert raised when it falls silent (or its Last Will says offline) and
// resolved when it is heard again.
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

export async function markDevicesSeen(db: Executor, seen: Seen[], now: Date): Promise<void> {
  if (seen.length === 0) return;
  const applied: Seen[] = [];
  for (const s of seen) {
    const result = await db
      .updateTable("devices")
      .set({
        last_seen_at: s.at,
        connection: s.connection ?? "online",
        ...(s.battery !== undefined && s.battery !== null ? { battery: s.battery } : {}),
        ...(s.rssi !== undefined && s.rssi !== null ? { rssi: s.rssi } : {}),
      })
      .where("id", "=", s.deviceId)
      .where((eb) => eb.or([eb("last_seen_at", "is", null), eb("last_seen_at", "<=", s.at)]))
      .executeTakeFirst();
    // Older news than what is stored (a Last Will already recorded) changes nothing.
    if (Number(result.numUpdatedRows) > 0) applied.push(s);
  }
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
