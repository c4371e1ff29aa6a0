// Home devices over a real MQTT connection to the embedded broker: credentials, topic
// permissions, storage acknowledged only after commit, units, duplicates and quarantine.
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectDevice,
  event,
  publish,
  registerDevice,
  telemetry,
  usingExternalBroker,
} from "./helpers/devices.factory";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;
let daughter: SignedIn;
let residentId: string;

beforeAll(async () => {
  t = await createTestApp({ mqtt: true });
  operator = await createOperator(t);
  daughter = await signUpFamily(t);
  residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
});
afterAll(() => t.close());

async function readings(deviceId: string) {
  return t.db
    .selectFrom("readings")
    .selectAll()
    .where("device_id", "=", deviceId)
    .orderBy("type")
    .execute();
}

async function quarantine(deviceId: string) {
  return t.db
    .selectFrom("quarantine")
    .select(["reason", "topic"])
    .where("device_id", "=", deviceId)
    .execute();
}

describe("device registry", () => {
  it("a primary registers a device and gets its credentials once; only a hash is kept", async () => {
    const res = await t.request("POST", `/v1/residents/${residentId}/devices`, {
      token: daughter.token,
      body: {
        kind: "blood_pressure_monitor",
        model: "BP-7",
        serial: "A-1",
        heartbeatIntervalS: 300,
      },
    });
    expect(res.status).toBe(201);
    const { device, credentials } = res.body;
    expect(device).toMatchObject({
      residentId,
      kind: "blood_pressure_monitor",
      status: "active",
      connection: "never",
    });
    expect(credentials.secret.length).toBeGreaterThanOrEqual(40);
    expect(credentials.mqtt).toMatchObject({
      username: device.id,
      password: credentials.secret,
      protocolVersion: 4,
    });
    // Devices are told the public address: PUBLIC_URL's host and the broker's port.
    expect(credentials.mqtt.url).toBe(
      usingExternalBroker
        ? process.env.MQTT_URL
        : `mqtt://kincare.test:${new URL(t.mqttUrl!).port}`,
    );
    const stored = await t.db
      .selectFrom("devices")
      .selectAll()
      .where("id", "=", device.id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(credentials.secret);
    expect(stored.mosquitto_hash).toMatch(/^\$7\$101\$/);
    const list = await t.request("GET", `/v1/residents/${residentId}/devices`, {
      token: daughter.token,
    });
    expect(JSON.stringify(list.body)).not.toContain(credentials.secret);
    const again = await t.request("POST", `/v1/residents/${residentId}/devices`, {
      token: daughter.token,
      body: { kind: "blood_pressure_monitor", model: "BP-7", serial: "A-1" },
    });
    expect(again.body.error.code).toBe("already_exists");
  });

  it("a member may see devices but not register them; a stranger does not see the resident", async () => {
    const brother = await signUpFamily(t);
    const stranger = await signUpFamily(t);
    await joinCircle(t, daughter.token, residentId, brother);
    const body = { kind: "scale", model: "S", serial: "B-1" };
    expect(
      (
        await t.request("POST", `/v1/residents/${residentId}/devices`, {
          token: brother.token,
          body,
        })
      ).status,
    ).toBe(403);
    expect(
      (await t.request("GET", `/v1/residents/${residentId}/devices`, { token: brother.token }))
        .status,
    ).toBe(200);
    expect(
      (
        await t.request("POST", `/v1/residents/${residentId}/devices`, {
          token: stranger.token,
          body,
        })
      ).status,
    ).toBe(404);
    const bad = await t.request("POST", `/v1/residents/${residentId}/devices`, {
      token: daughter.token,
      body: { kind: "toaster", model: "S", serial: "B-2", heartbeatIntervalS: 1 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.issues.map((i: { path: string }) => i.path).sort()).toEqual([
      "heartbeatIntervalS",
      "kind",
    ]);
  });

  // The embedded broker checks secrets itself; an external one checks its password file (README).
  it.skipIf(usingExternalBroker)(
    "rotating the secret drops the connection and refuses the old secret",
    async () => {
      const device = await registerDevice(t, daughter.token, residentId);
      const client = await connectDevice(t, device);
      const closed = new Promise<void>((r) => client.once("close", () => r()));
      const rotated = await t.request("POST", `/v1/devices/${device.id}/rotate`, {
        token: daughter.token,
      });
      expect(rotated.status).toBe(200);
      await closed;
      await expect(connectDevice(t, device)).rejects.toThrow(/Not authorized/i);
      const fresh = await connectDevice(t, { ...device, secret: rotated.body.secret });
      await fresh.endAsync();
    },
  );

  it.skipIf(usingExternalBroker)("a revoked device can no longer connect", async () => {
    const device = await registerDevice(t, daughter.token, residentId);
    const res = await t.request("POST", `/v1/devices/${device.id}/revoke`, {
      token: operator.token,
    });
    expect(res.body.status).toBe("revoked");
    await expect(connectDevice(t, device)).rejects.toThrow(/Not authorized/i);
  });

  it("a reassigned device's earlier readings stay with the first resident", async () => {
    const device = await registerDevice(t, daughter.token, residentId, { kind: "pulse_oximeter" });
    const father = (
      await createResident(t, daughter.token, {
        relationship: "daughter",
        fullName: "Wang Jianguo",
      })
    ).id;
    const client = await connectDevice(t, device);
    await publish(
      t,
      client,
      `${device.topicRoot}telemetry`,
      telemetry(t, "before", [{ type: "heart_rate", unit: "bpm", value: 70 }]),
      { qos: 1 },
    );
    t.clock.advance(1_000);
    const moved = await t.request("POST", `/v1/devices/${device.id}/reassign`, {
      token: daughter.token,
      body: { residentId: father },
    });
    expect(moved.body.residentId).toBe(father);
    t.clock.advance(1_000);
    await publish(
      t,
      client,
      `${device.topicRoot}telemetry`,
      telemetry(t, "after", [{ type: "heart_rate", unit: "bpm", value: 72 }]),
      { qos: 1 },
    );
    await client.endAsync();
    const rows = await t.db
      .selectFrom("readings")
      .select(["msg_id", "resident_id"])
      .where("device_id", "=", device.id)
      .orderBy("msg_id")
      .execute();
    expect(rows).toEqual([
      { msg_id: "after", resident_id: father },
      { msg_id: "before", resident_id: residentId },
    ]);
  });
});

it.runIf(usingExternalBroker)(
  "on an external broker, a revoked device's messages are quarantined, not stored",
  async () => {
    const device = await registerDevice(t, daughter.token, residentId);
    const client = await connectDevice(t, device);
    await t.request("POST", `/v1/devices/${device.id}/revoke`, { token: daughter.token });
    await publish(t, client, `${device.topicRoot}event`, event(t, "after-revoke", "sos"));
    await client.endAsync();
    expect(await quarantine(device.id)).toEqual([
      { reason: "unknown_device", topic: `${device.topicRoot}event` },
    ]);
    expect(
      await t.db
        .selectFrom("device_events")
        .select("msg_id")
        .where("device_id", "=", device.id)
        .execute(),
    ).toEqual([]);
  },
);

describe.skipIf(usingExternalBroker)("MQTT access on the embedded broker", () => {
  it("refuses unknown devices and wrong secrets at connect", async () => {
    const device = await registerDevice(t, daughter.token, residentId);
    await expect(connectDevice(t, { ...device, secret: "wrong-secret" })).rejects.toThrow(
      /Not authorized/i,
    );
    await expect(connectDevice(t, { ...device, id: "no-such-device" })).rejects.toThrow(
      /Not authorized/i,
    );
    await expect(
      mqtt.connectAsync(t.mqttUrl!, { reconnectPeriod: 0, protocolVersion: 4 }),
    ).rejects.toThrow();
  });

  it("a device publishing on another device's topic is disconnected and nothing is stored", async () => {
    const a = await registerDevice(t, daughter.token, residentId);
    const b = await registerDevice(t, daughter.token, residentId);
    const client = await connectDevice(t, a);
    const closed = new Promise<void>((r) => client.once("close", () => r()));
    client.publish(`${b.topicRoot}event`, event(t, "spoof", "sos"), { qos: 1 });
    await closed;
    const events = await t.db
      .selectFrom("device_events")
      .select("msg_id")
      .where("device_id", "in", [a.id, b.id])
      .execute();
    expect(events).toEqual([]);
  });

  it("a device may subscribe to its own cmd topic only", async () => {
    const a = await registerDevice(t, daughter.token, residentId);
    const b = await registerDevice(t, daughter.token, residentId);
    const client = await connectDevice(t, a);
    const own = await client.subscribeAsync(`${a.topicRoot}cmd`, { qos: 1 });
    expect(own[0]?.qos).toBe(1);
    const other = await client
      .subscribeAsync(`${b.topicRoot}cmd`, { qos: 1 })
      .catch((e: Error) => e);
    const everything = await connectDevice(t, a).then((c) =>
      c
        .subscribeAsync("#", { qos: 1 })
        .catch((e: Error) => e)
        .finally(() => c.endAsync()),
    );
    expect(other instanceof Error || other[0]?.qos === 128).toBe(true);
    expect(everything instanceof Error || everything[0]?.qos === 128).toBe(true);
    await client.endAsync().catch(() => undefined);
  });
});

describe("ingest", () => {
  it("stores readings before the PUBACK, converting units to UCUM", async () => {
    const device = await registerDevice(t, daughter.token, residentId, { kind: "hub" });
    const client = await connectDevice(t, device);
    await publish(
      t,
      client,
      `${device.topicRoot}telemetry`,
      telemetry(t, "m-1", [
        { type: "heart_rate", unit: "bpm", value: 72 },
        { type: "blood_pressure", unit: "mmHg", systolic: 128, diastolic: 82 },
        { type: "body_temperature", unit: "°F", value: 98.6 },
        { type: "weight", unit: "lb", value: 132.3 },
        { type: "blood_glucose", unit: "mmol/L", value: 6.1 },
        { type: "spo2", unit: "%", value: 97 },
        { type: "respiratory_rate", unit: "/min", value: 16 },
        { type: "steps", value: 1200 },
      ]),
      { qos: 1 },
    );
    // The PUBACK came back: the readings must already be committed.
    const rows = await readings(device.id);
    const byType = Object.fromEntries(rows.map((r) => [r.type, [Number(r.value), r.unit]]));
    expect(byType).toEqual({
      heart_rate: [72, "/min"],
      systolic: [128, "mm[Hg]"],
      diastolic: [82, "mm[Hg]"],
      body_temperature: [37, "Cel"],
      weight: [60.01, "kg"],
      blood_glucose: [109.898, "mg/dL"],
      spo2: [97, "%"],
      respiratory_rate: [16, "/min"],
      steps: [1200, "{steps}"],
    });
    expect(
      rows.every(
        (r) => r.resident_id === residentId && r.measured_at === t.clock.now().toISOString(),
      ),
    ).toBe(true);
    await client.endAsync();
  });

  it("a message sent twice (a device's retry) is stored once", async () => {
    const device = await registerDevice(t, daughter.token, residentId, { kind: "pulse_oximeter" });
    const client = await connectDevice(t, device);
    const payload = telemetry(t, "same", [{ type: "spo2", unit: "%", value: 96 }]);
    await publish(t, client, `${device.topicRoot}telemetry`, payload, { qos: 1 });
    await publish(t, client, `${device.topicRoot}telemetry`, payload, { qos: 1, dup: true });
    await client.endAsync();
    expect(await readings(device.id)).toHaveLength(1);
  });

  it("the same msgId twice in one commit is stored once and judged once", async () => {
    const home = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
    const oximeter = await registerDevice(t, daughter.token, home, { kind: "pulse_oximeter" });
    const pendant = await registerDevice(t, daughter.token, home, { kind: "sos_pendant" });
    const prefix = t.config.MQTT_TOPIC_PREFIX;
    // One heart rate outside the normal range: judged twice, it would be the second in a row,
    // which raises a warning. Both copies and the SOS pair are submitted in one tick: one commit.
    const high = Buffer.from(
      telemetry(t, "twice", [{ type: "heart_rate", unit: "/min", value: 121 }]),
    );
    const sos = Buffer.from(event(t, "press-1", "sos"));
    const batches = t.system.ingest.stats.batches;
    const duplicates = t.system.ingest.stats.duplicates;
    await Promise.all([
      t.system.ingest.submit(`${prefix}/devices/${oximeter.id}/telemetry`, high),
      t.system.ingest.submit(`${prefix}/devices/${oximeter.id}/telemetry`, high),
      t.system.ingest.submit(`${prefix}/devices/${pendant.id}/event`, sos),
      t.system.ingest.submit(`${prefix}/devices/${pendant.id}/event`, sos),
    ]);
    expect(t.system.ingest.stats.batches - batches).toBe(1);
    expect(t.system.ingest.stats.duplicates - duplicates).toBe(1);
    expect(await readings(oximeter.id)).toHaveLength(1);
    const events = await t.db
      .selectFrom("device_events")
      .select("msg_id")
      .where("device_id", "=", pendant.id)
      .execute();
    expect(events).toHaveLength(1);
    const alerts = await t.db
      .selectFrom("alerts")
      .select(["id", "kind"])
      .where("resident_id", "=", home)
      .execute();
    expect(alerts.map((a) => a.kind)).toEqual(["sos"]);
    // Judged twice, the SOS would have joined its own alert as a repeat.
    const timeline = await t.db
      .selectFrom("alert_timeline")
      .select("type")
      .where("alert_id", "=", alerts[0]!.id)
      .execute();
    expect(timeline.map((e) => e.type)).toEqual(["raised"]);
  });

  it.each([
    ["not JSON", "{nope", "bad_json"],
    [
      "no msgId",
      JSON.stringify({
        ts: "2026-11-22T08:59:00.000Z",
        readings: [{ type: "spo2", unit: "%", value: 97 }],
      }),
      "bad_msg_id",
    ],
    ["an unknown type", "unknown_type", "unknown_type"],
    ["an unknown unit", "unknown_unit", "unknown_unit"],
    ["an absurd value", "absurd", "absurd_value"],
    ["a time far in the future", "future", "future_timestamp"],
    ["a reading without a value", "novalue", "bad_shape"],
  ])("quarantines %s and keeps taking good messages", async (_what, kind, reason) => {
    const device = await registerDevice(t, daughter.token, residentId, { kind: "hub" });
    const client = await connectDevice(t, device);
    const bodies: Record<string, string> = {
      unknown_type: telemetry(t, "q", [{ type: "mood", unit: "1", value: 3 }]),
      unknown_unit: telemetry(t, "q", [{ type: "heart_rate", unit: "hz", value: 1.2 }]),
      absurd: telemetry(t, "q", [{ type: "heart_rate", unit: "/min", value: 900 }]),
      future: telemetry(
        t,
        "q",
        [{ type: "heart_rate", unit: "/min", value: 70 }],
        t.clock.now().getTime() + 3_600_000,
      ),
      novalue: telemetry(t, "q", [{ type: "heart_rate", unit: "/min" }]),
    };
    await publish(t, client, `${device.topicRoot}telemetry`, bodies[kind] ?? kind, { qos: 1 });
    await publish(
      t,
      client,
      `${device.topicRoot}telemetry`,
      telemetry(t, "good", [{ type: "heart_rate", unit: "/min", value: 70 }]),
      { qos: 1 },
    );
    await client.endAsync();
    expect(await quarantine(device.id)).toEqual([
      { reason, topic: `${device.topicRoot}telemetry` },
    ]);
    expect((await readings(device.id)).map((r) => r.msg_id)).toEqual(["good"]);
    expect(t.system.ingest.stats.quarantined[reason]).toBeGreaterThanOrEqual(1);
    const desk = await t.request("GET", `/v1/quarantine?deviceId=${device.id}`, {
      token: operator.token,
    });
    expect(desk.body.items).toEqual([expect.objectContaining({ deviceId: device.id, reason })]);
    expect(desk.body.counts[reason]).toBeGreaterThanOrEqual(1);
    expect((await t.request("GET", "/v1/quarantine", { token: daughter.token })).status).toBe(403);
  });

  it("quarantines a message from an unknown device with the topic it came on", async () => {
    const topic = `${t.config.MQTT_TOPIC_PREFIX}/devices/no-such-device/telemetry`;
    await t.system.ingest.submit(
      topic,
      Buffer.from(telemetry(t, "m-1", [{ type: "spo2", unit: "%", value: 97 }])),
    );
    expect(await quarantine("no-such-device")).toEqual([{ reason: "unknown_device", topic }]);
  });

  it("quarantines a bad event, heartbeat or status without dropping the connection", async () => {
    const device = await registerDevice(t, daughter.token, residentId);
    const client = await connectDevice(t, device);
    await publish(t, client, `${device.topicRoot}event`, event(t, "e1", "explosion"), { qos: 1 });
    await publish(
      t,
      client,
      `${device.topicRoot}heartbeat`,
      JSON.stringify({ ts: t.clock.now().getTime(), battery: 250 }),
      { qos: 1 },
    );
    await publish(t, client, `${device.topicRoot}status`, "sleepy", { qos: 1 });
    await publish(t, client, `${device.topicRoot}event`, event(t, "e2", "check_in"), { qos: 1 });
    expect(client.connected).toBe(true);
    await client.endAsync();
    expect((await quarantine(device.id)).map((q) => q.reason).sort()).toEqual([
      "bad_shape",
      "bad_shape",
      "unknown_type",
    ]);
    const events = await t.db
      .selectFrom("device_events")
      .select(["msg_id", "type"])
      .where("device_id", "=", device.id)
      .execute();
    expect(events).toEqual([{ msg_id: "e2", type: "check_in" }]);
  });
});
