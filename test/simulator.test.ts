// The device simulator (devices/simulator.ts) against a whole kincare: it connects as real devices
// with their credentials, and what it sends is stored, alerted on and answered; a device that drops
// off the network fires its Last Will and sends what it kept when it is back. Waits are on what
// kincare stored, so the suite holds on an external broker too (whose PUBACK is not a commit).
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  parseDuration,
  parseRate,
  type SimulatedDevice,
  startSimulator,
} from "../devices/simulator";
import {
  commandTypes,
  parseCmdAck,
  parseEvent,
  parseHeartbeat,
  parseTelemetry,
} from "../src/devices/protocol";
import { registerDevice } from "./helpers/devices.factory";
import { type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let daughter: SignedIn;

beforeAll(async () => {
  t = await createTestApp({ mqtt: true });
  daughter = await signUpFamily(t);
});
afterAll(() => t.close());

async function home(kinds: string[]) {
  const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
  const devices: SimulatedDevice[] = [];
  for (const kind of kinds) {
    const d = await registerDevice(t, daughter.token, residentId, { kind, heartbeatIntervalS: 10 });
    devices.push({
      id: d.id,
      secret: d.secret,
      kind: kind as SimulatedDevice["kind"],
      heartbeatIntervalS: 10,
      timeZone: "Asia/Shanghai",
    });
  }
  return { residentId, devices, ids: devices.map((d) => d.id) };
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const countReadings = async (ids: string[]) =>
  Number(
    (
      await t.db
        .selectFrom("readings")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("device_id", "in", ids)
        .executeTakeFirstOrThrow()
    ).n,
  );

const alertsOf = (residentId: string) =>
  t.db
    .selectFrom("alerts")
    .select(["kind", "severity", "status"])
    .where("resident_id", "=", residentId)
    .execute();

describe("device simulator", () => {
  it("connects as real devices whose vitals, heartbeats and SOS presses kincare stores, alerts on and answers", async () => {
    const h = await home(["hub", "pulse_oximeter", "sos_pendant"]);
    const sim = startSimulator({
      url: t.mqttUrl!,
      topicPrefix: t.config.MQTT_TOPIC_PREFIX,
      devices: h.devices,
      clock: t.clock,
      // Ten simulated seconds a second: heartbeats every second, a reading every half second.
      speed: 10,
      rates: { telemetry: 720, sos: 900, checkIn: 900, falls: 0, offline: 0 },
      cancelShare: 0,
      abnormal: 0.05,
      seed: 11,
    });
    try {
      await waitFor(
        "readings, heartbeats, an SOS and its answer came through",
        () =>
          sim.stats.online === 3 &&
          sim.stats.telemetry.acked >= 6 &&
          sim.stats.heartbeats >= 6 &&
          (sim.stats.events.sos ?? 0) >= 1 &&
          (sim.stats.events.check_in ?? 0) >= 1 &&
          (sim.stats.commands.sos_received ?? 0) >= 1,
      );
    } finally {
      await sim.stop();
    }
    expect(sim.stats.online).toBe(0);

    // Everything a device was told was delivered is stored, once.
    await waitFor(
      "kincare stored every acknowledged reading",
      async () => (await countReadings(h.ids)) === sim.stats.telemetry.readingsAcked,
    );
    const types = await t.db
      .selectFrom("readings")
      .select("type")
      .distinct()
      .where("device_id", "in", h.ids)
      .execute();
    expect(types.map((r) => r.type).sort()).toEqual(
      expect.arrayContaining(["heart_rate", "respiratory_rate", "spo2", "steps"]),
    );
    const events = await t.db
      .selectFrom("device_events")
      .select(["type"])
      .where("device_id", "in", h.ids)
      .execute();
    expect(events.filter((e) => e.type === "sos")).toHaveLength(sim.stats.events.sos!);
    expect(events.filter((e) => e.type === "check_in")).toHaveLength(sim.stats.events.check_in!);

    // Heartbeats at each device's interval: battery and signal are known, the device was seen.
    await waitFor("every device's heartbeat is recorded", async () => {
      await t.system.ingest.flushSeen();
      const rows = await t.db
        .selectFrom("devices")
        .select(["battery", "rssi", "last_seen_at"])
        .where("id", "in", h.ids)
        .execute();
      return rows.every((r) => r.battery !== null && r.rssi !== null && r.last_seen_at !== null);
    });

    // An SOS press is a critical alert; later presses join it.
    const sos = (await alertsOf(h.residentId)).filter((a) => a.kind === "sos");
    expect(sos).toEqual([{ kind: "sos", severity: "critical", status: "open" }]);

    // The simulator speaks the protocol exactly: nothing it sent was quarantined.
    const quarantined = await t.db
      .selectFrom("quarantine")
      .select(["reason", "detail"])
      .where("device_id", "in", h.ids)
      .execute();
    expect(quarantined).toEqual([]);
  });

  it("a device that drops off the network fires its Last Will, then comes back and sends what it kept", async () => {
    const h = await home(["hub"]);
    const [hub] = h.ids as [string];
    const sim = startSimulator({
      url: t.mqttUrl!,
      topicPrefix: t.config.MQTT_TOPIC_PREFIX,
      devices: h.devices,
      clock: t.clock,
      speed: 10,
      rates: { telemetry: 1800, sos: 0, checkIn: 0, falls: 0, offline: 0 },
      abnormal: 0,
      seed: 5,
    });
    const connection = async () =>
      (
        await t.db
          .selectFrom("devices")
          .select("connection")
          .where("id", "=", hub)
          .executeTakeFirstOrThrow()
      ).connection;
    try {
      await waitFor("the hub is online and sending", async () => {
        await t.system.ingest.flushSeen();
        return sim.stats.telemetry.acked >= 2 && (await connection()) === "online";
      });
      sim.goOffline(hub, 1_500);
      await waitFor(
        "its Last Will raised 'device offline'",
        async () =>
          (await connection()) === "offline" &&
          (await alertsOf(h.residentId)).some(
            (a) => a.kind === "device_offline" && a.status === "open",
          ),
      );
      await waitFor("it is back and said so", async () => {
        await t.system.ingest.flushSeen();
        return (
          sim.stats.reconnects === 1 &&
          (await connection()) === "online" &&
          (await alertsOf(h.residentId)).every((a) => a.status !== "open")
        );
      });
    } finally {
      await sim.stop();
    }
    // Readings taken while it was away went after it came back, and none was lost or doubled.
    expect(sim.stats.drops).toBe(1);
    expect(sim.stats.resent).toBeGreaterThan(0);
    expect(sim.stats.telemetry.acked).toBe(sim.stats.telemetry.sent);
    await waitFor(
      "kincare stored every reading the hub took",
      async () => (await countReadings(h.ids)) === sim.stats.telemetry.readingsAcked,
    );
  });

  it("a resend mixed with new messages in one commit is stored once and judged once", async () => {
    const h = await home(["pulse_oximeter"]);
    const topic = `${t.config.MQTT_TOPIC_PREFIX}/devices/${h.ids[0]}/telemetry`;
    const message = (msgId: string, value: number) =>
      Buffer.from(
        JSON.stringify({
          msgId,
          ts: t.clock.now().getTime(),
          readings: [{ type: "heart_rate", unit: "/min", value }],
        }),
      );
    // Outside the normal range once: a second reading outside would raise a warning.
    await t.system.ingest.submit(topic, message("m-1", 121));
    const before = t.system.ingest.stats.duplicates;
    // The device did not hear the PUBACK of m-1 and sends it again, in the same commit as m-2.
    await Promise.all([
      t.system.ingest.submit(topic, message("m-1", 121)),
      t.system.ingest.submit(topic, message("m-2", 72)),
    ]);
    expect(t.system.ingest.stats.duplicates - before).toBe(1);
    const rows = await t.db
      .selectFrom("readings")
      .select(["msg_id", "value"])
      .where("device_id", "=", h.ids[0]!)
      .orderBy("msg_id")
      .execute();
    expect(rows.map((r) => [r.msg_id, Number(r.value)])).toEqual([
      ["m-1", 121],
      ["m-2", 72],
    ]);
    // Judged again, the resend would have been the second reading outside: a warning.
    expect(await alertsOf(h.residentId)).toEqual([]);
  });

  it("the sample payloads in devices/samples follow the protocol", () => {
    const dir = new URL("../devices/samples/", import.meta.url);
    const now = new Date("2026-11-22T09:05:00Z");
    const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const file of files) {
      const payload = readFileSync(new URL(file, dir));
      if (file.startsWith("telemetry-"))
        expect(parseTelemetry(payload, now).readings.length).toBeGreaterThan(0);
      else if (file.startsWith("event-")) expect(parseEvent(payload, now).type).toBeTruthy();
      else if (file === "heartbeat.json") expect(parseHeartbeat(payload, now).battery).toBe(82);
      else if (file === "cmd-ack.json") expect(parseCmdAck(payload).cmdId).toBeTruthy();
      else if (file.startsWith("cmd-")) {
        const cmd = JSON.parse(payload.toString("utf8"));
        expect(commandTypes).toContain(cmd.type);
        expect(typeof cmd.cmdId).toBe("string");
      } else throw new Error(`a sample of no known kind: ${file}`);
    }
  });

  it.each([
    ["2/h", 2],
    ["30/min", 1800],
    ["4/day", 4 / 24],
    ["1/s", 3600],
    ["0.5", 0.5],
  ])("reads the rate %s as %d an hour", (text, perHour) => {
    expect(parseRate(text)).toBeCloseTo(perHour);
  });

  it("reads durations and refuses what is not one", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("2")).toBe(2_000);
    expect(() => parseDuration("soon")).toThrow(/not a duration/);
    expect(() => parseRate("often")).toThrow(/not a rate/);
  });
});
