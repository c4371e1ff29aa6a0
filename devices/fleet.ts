// Registers simulated devices the way an operator would, through the registry's own service
// functions (authorisation, audit, hashed secret), for the simulator's --register-demo and the
// ingest benchmark. Device secrets are shown once: a device whose model and serial are already
// registered (its credentials file was lost) gets a rotated secret instead of a second identity.
import { rolesOf } from "../src/accounts/accounts.repository";
import type { Db } from "../src/db/database";
import { registerDevice, rotateSecret } from "../src/devices/devices.service";
import type { DeviceKind } from "../src/devices/devices.table";
import type { DeviceLink } from "../src/devices/link";
import { AppError } from "../src/errors";
import type { Actor } from "../src/http/context";
import { createResident } from "../src/residents/residents.service";

export interface FleetDevice {
  id: string;
  secret: string;
  kind: DeviceKind;
  model: string;
  serial: string;
  heartbeatIntervalS: number;
  residentId: string;
  timeZone: string;
}

export async function actorOf(db: Db, userId: string, displayName = "simulator"): Promise<Actor> {
  return { userId, sessionId: "simulator", displayName, roles: await rolesOf(db, userId) };
}

const models: Record<DeviceKind, string> = {
  sos_button: "KinCall B1",
  sos_pendant: "KinCall P2",
  blood_pressure_monitor: "CuffSense 300",
  pulse_oximeter: "OxiClip 2",
  thermometer: "TempDot",
  scale: "StepOn S",
  glucose_meter: "GlucoCheck",
  fall_detector: "Guardian F",
  motion_sensor: "Motion M1",
  door_sensor: "Door D1",
  hub: "KinHub",
};

/** Registers one device for a resident, or rotates the secret of the one with the same serial. */
export async function registerOne(
  db: Db,
  link: Pick<DeviceLink, "hasher" | "endpoint">,
  actor: Actor,
  resident: { id: string; timeZone: string },
  kind: DeviceKind,
  serial: string,
  heartbeatIntervalS: number,
): Promise<FleetDevice> {
  const model = models[kind];
  const ctx = { now: new Date(), actor, requestId: null };
  let id: string;
  let secret: string;
  try {
    const { credentials } = await registerDevice(db, ctx, link.hasher, link.endpoint, resident.id, {
      kind,
      model,
      serial,
      heartbeatIntervalS,
    });
    id = credentials.deviceId;
    secret = credentials.secret;
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== "already_exists") throw error;
    const existing = await db
      .selectFrom("devices")
      .select(["id", "heartbeat_interval_s"])
      .where("model", "=", model)
      .where("serial", "=", serial)
      .where("status", "=", "active")
      .executeTakeFirstOrThrow();
    const credentials = await rotateSecret(db, ctx, link.hasher, link.endpoint, existing.id);
    id = existing.id;
    secret = credentials.secret;
    heartbeatIntervalS = existing.heartbeat_interval_s;
  }
  return {
    id,
    secret,
    kind,
    model,
    serial,
    heartbeatIntervalS,
    residentId: resident.id,
    timeZone: resident.timeZone,
  };
}

/** A made-up community for load tests: `residents` people sharing `devices` devices round-robin. */
export async function registerFleet(
  db: Db,
  link: Pick<DeviceLink, "hasher" | "endpoint">,
  operatorUserId: string,
  opts: {
    residents: number;
    devices: number;
    kinds: DeviceKind[];
    timeZones: string[];
    serialPrefix: string;
    heartbeatIntervalS?: number;
  },
): Promise<FleetDevice[]> {
  const actor = await actorOf(db, operatorUserId);
  const residents: { id: string; timeZone: string }[] = [];
  for (let i = 0; i < opts.residents; i++) {
    const timeZone = opts.timeZones[i % opts.timeZones.length]!;
    const resident = await createResident(
      db,
      { now: new Date(), actor, requestId: null },
      {
        fullName: `Load Test Resident ${i + 1}`,
        dateOfBirth: "1942-05-17",
        address: {
          line1: `${i + 1} Test Street`,
          locality: "Benchmark",
          country: "GB",
          latitude: 51.5,
          longitude: -0.12,
        },
        timeZone,
        language: "en",
      },
    );
    residents.push({ id: resident.id, timeZone });
  }
  const fleet: FleetDevice[] = [];
  for (let i = 0; i < opts.devices; i++) {
    const resident = residents[i % residents.length]!;
    const kind = opts.kinds[i % opts.kinds.length]!;
    fleet.push(
      await registerOne(
        db,
        link,
        actor,
        resident,
        kind,
        `${opts.serialPrefix}-${i + 1}`,
        opts.heartbeatIntervalS ?? 300,
      ),
    );
  }
  return fleet;
}
