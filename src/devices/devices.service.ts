// The device registry: register a device for a resident and hand out its credentials once;
// rotate, revoke, reassign. Readings stay with the resident the device served when they were taken.
import { authorizeResident } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import type { RequestCtx } from "../request-ctx";
import { newDeviceSecret, type SecretHasher } from "./credentials";
import type { DeviceKind, DeviceRow } from "./devices.table";
import { topicFor } from "./protocol";

type Ctx = RequestCtx & { actor: Actor };

export interface MqttEndpoint {
  /** Where devices connect (mqtt://host:port). */
  url: string;
  topicPrefix: string;
}

export function presentDevice(d: DeviceRow) {
  return {
    id: d.id,
    residentId: d.resident_id,
    kind: d.kind,
    model: d.model,
    serial: d.serial,
    heartbeatIntervalS: d.heartbeat_interval_s,
    status: d.status,
    connection: d.connection,
    lastSeenAt: d.last_seen_at,
    battery: d.battery === null ? null : Number(d.battery),
    rssi: d.rssi === null ? null : Number(d.rssi),
    createdAt: d.created_at,
    secretRotatedAt: d.secret_rotated_at,
    revokedAt: d.revoked_at,
  };
}

function credentials(endpoint: MqttEndpoint, deviceId: string, secret: string) {
  return {
    deviceId,
    secret,
    mqtt: {
      url: endpoint.url,
      protocolVersion: 4,
      username: deviceId,
      password: secret,
      topicRoot: `${endpoint.topicPrefix}/devices/${deviceId}/`,
      commandTopic: topicFor(endpoint.topicPrefix, deviceId, "cmd"),
    },
  };
}

function audit(
  db: Executor,
  ctx: Ctx,
  action: string,
  device: { id: string; resident_id: string },
  details?: Record<string, unknown>,
) {
  return recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action,
      entityType: "device",
      entityId: device.id,
      residentId: device.resident_id,
      requestId: ctx.requestId,
      ...(details ? { details } : {}),
    },
    ctx.now,
  );
}

export async function registerDevice(
  db: Db,
  ctx: Ctx,
  hasher: SecretHasher,
  endpoint: MqttEndpoint,
  residentId: string,
  input: { kind: DeviceKind; model: string; serial: string; heartbeatIntervalS: number },
) {
  const id = newId();
  const { secret, secretHash, mosquittoHash } = newDeviceSecret(hasher);
  const now = iso(ctx.now);
  const row = await db.transaction().execute(async (trx) => {
    const { resident } = await authorizeResident(trx, ctx.actor, residentId, "manageDevices");
    if (resident.status === "archived")
      throw new AppError("invalid_state", "this resident is archived");
    const clash = await trx
      .selectFrom("devices")
      .select("id")
      .where("model", "=", input.model)
      .where("serial", "=", input.serial)
      .where("status", "=", "active")
      .executeTakeFirst();
    if (clash)
      throw new AppError(
        "already_exists",
        "a device with this model and serial number is already registered",
      );
    const row: DeviceRow = {
      id,
      resident_id: residentId,
      kind: input.kind,
      model: input.model,
      serial: input.serial,
      heartbeat_interval_s: input.heartbeatIntervalS,
      secret_hash: secretHash,
      mosquitto_hash: mosquittoHash,
      status: "active",
      connection: "never",
      last_seen_at: null,
      battery: null,
      rssi: null,
      created_by: ctx.actor.userId,
      created_at: now,
      secret_rotated_at: now,
      revoked_at: null,
    };
    await trx.insertInto("devices").values(row).execute();
    await trx
      .insertInto("device_assignments")
      .values({ device_id: id, resident_id: residentId, from_at: now, to_at: null })
      .execute();
    await audit(trx, ctx, "device.register", row, { kind: input.kind });
    return row;
  });
  return { device: presentDevice(row), credentials: credentials(endpoint, id, secret) };
}

/** Finds a device the actor may act on: no relationship to its resident answers 404. */
export async function authorizeDevice(
  db: Executor,
  actor: Actor,
  deviceId: string,
  action: "viewDevices" | "manageDevices",
) {
  const device = await db
    .selectFrom("devices")
    .selectAll()
    .where("id", "=", deviceId)
    .executeTakeFirst();
  if (!device) throw notFound("the device");
  await authorizeResident(db, actor, device.resident_id, action);
  return device;
}

export async function listResidentDevices(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "viewDevices");
  const rows = await db
    .selectFrom("devices")
    .selectAll()
    .where("resident_id", "=", residentId)
    .orderBy("created_at")
    .execute();
  return rows.map(presentDevice);
}

export async function rotateSecret(
  db: Db,
  ctx: Ctx,
  hasher: SecretHasher,
  endpoint: MqttEndpoint,
  deviceId: string,
) {
  const { secret, secretHash, mosquittoHash } = newDeviceSecret(hasher);
  await db.transaction().execute(async (trx) => {
    const device = await authorizeDevice(trx, ctx.actor, deviceId, "manageDevices");
    if (device.status === "revoked")
      throw new AppError("invalid_state", "this device is revoked: register it again");
    await trx
      .updateTable("devices")
      .set({
        secret_hash: secretHash,
        mosquitto_hash: mosquittoHash,
        secret_rotated_at: iso(ctx.now),
      })
      .where("id", "=", deviceId)
      .execute();
    await audit(trx, ctx, "device.rotate", device);
  });
  return credentials(endpoint, deviceId, secret);
}

export async function revokeDevice(db: Db, ctx: Ctx, deviceId: string) {
  return db.transaction().execute(async (trx) => {
    const device = await authorizeDevice(trx, ctx.actor, deviceId, "manageDevices");
    if (device.status === "revoked")
      throw new AppError("invalid_state", "this device is already revoked");
    await trx
      .updateTable("devices")
      .set({ status: "revoked", revoked_at: iso(ctx.now) })
      .where("id", "=", deviceId)
      .execute();
    await trx
      .updateTable("device_assignments")
      .set({ to_at: iso(ctx.now) })
      .where("device_id", "=", deviceId)
      .where("to_at", "is", null)
      .execute();
    await audit(trx, ctx, "device.revoke", device);
    return presentDevice({ ...device, status: "revoked", revoked_at: iso(ctx.now) });
  });
}

export async function reassignDevice(db: Db, ctx: Ctx, deviceId: string, residentId: string) {
  return db.transaction().execute(async (trx) => {
    const device = await authorizeDevice(trx, ctx.actor, deviceId, "manageDevices");
    if (device.status === "revoked") throw new AppError("invalid_state", "this device is revoked");
    if (device.resident_id === residentId)
      throw new AppError("invalid_state", "the device already belongs to this resident");
    await authorizeResident(trx, ctx.actor, residentId, "manageDevices");
    const now = iso(ctx.now);
    await trx
      .updateTable("device_assignments")
      .set({ to_at: now })
      .where("device_id", "=", deviceId)
      .where("to_at", "is", null)
      .execute();
    await trx
      .insertInto("device_assignments")
      .values({ device_id: deviceId, resident_id: residentId, from_at: now, to_at: null })
      .execute();
    await trx
      .updateTable("devices")
      .set({ resident_id: residentId })
      .where("id", "=", deviceId)
      .execute();
    await audit(trx, ctx, "device.reassign", device, { from: device.resident_id, to: residentId });
    return presentDevice({ ...device, resident_id: residentId });
  });
}

/** For an external Mosquitto: `deviceId:hash` lines of every active device. */
export async function mosquittoPasswordLines(db: Executor): Promise<string[]> {
  const rows = await db
    .selectFrom("devices")
    .select(["id", "mosquitto_hash"])
    .where("status", "=", "active")
    .orderBy("id")
    .execute();
  return rows.map((r) => `${r.id}:${r.mosquitto_hash}`);
}
