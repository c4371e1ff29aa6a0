// kincare on an external broker (a private Mosquitto with per-device passwords and the ACL from
// the README), whatever MQTT_URL says: persistent sessions keep what devices send while kincare
// is away, and two kincare processes in one shared group store each message once.
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mosquittoAclFor } from "../src/devices/mosquitto";
import { event, type Registered, registerDevice, telemetry } from "./helpers/devices.factory";
import { type SignedIn, signUpFamily } from "./helpers/factories";
import { type Mosquitto, startMosquitto } from "./helpers/mosquitto";
import { createResident } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

const SERVICE = { username: "kincare", password: "service password 4711" };
let mosquitto: Mosquitto;
const prefix = `kcext${process.pid}/v1`;
const apps: TestApp[] = [];

beforeAll(async () => {
  mosquitto = await startMosquitto({
    users: [SERVICE],
    acl: mosquittoAclFor(prefix, SERVICE.username),
    persistence: true,
  });
});
afterAll(async () => {
  for (const app of apps.reverse()) await app.close();
  await mosquitto.stop();
});

function mqttEnv(extra: Record<string, string> = {}) {
  return {
    MQTT_URL: mosquitto.url,
    MQTT_USERNAME: SERVICE.username,
    MQTT_PASSWORD: SERVICE.password,
    MQTT_TOPIC_PREFIX: prefix,
    MQTT_INGEST_CONNECTIONS: "2",
    ...extra,
  };
}

async function deviceUser(t: TestApp, device: Registered) {
  const row = await t.db
    .selectFrom("devices")
    .select("mosquitto_hash")
    .where("id", "=", device.id)
    .executeTakeFirstOrThrow();
  return { username: device.id, hash: row.mosquitto_hash };
}

function connect(device: Registered): Promise<MqttClient> {
  return mqtt.connectAsync(mosquitto.url, {
    username: device.id,
    password: device.secret,
    clientId: device.id,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
}

async function eventually(check: () => Promise<boolean>, ms = 10_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("condition not met in time");
}

describe("an external broker", () => {
  let t: TestApp;
  let daughter: SignedIn;
  let residentId: string;

  beforeAll(async () => {
    t = await createTestApp({ env: mqttEnv() });
    apps.push(t);
    daughter = await signUpFamily(t);
    residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
  });

  it("an SOS sent while kincare was away is stored and alerted exactly once when it is back", async () => {
    const device = await registerDevice(t, daughter.token, residentId);
    await mosquitto.addUsers([await deviceUser(t, device)]);
    await t.system.startDevices(); // kincare's persistent sessions now exist on the broker
    await t.system.stopDevices(); // ...and kincare goes away, its sessions kept

    const client = await connect(device);
    await client.publishAsync(`${device.topicRoot}event`, event(t, "sos-while-away", "sos"), {
      qos: 1,
    });
    await client.publishAsync(`${device.topicRoot}event`, event(t, "sos-while-away", "sos"), {
      qos: 1,
    }); // its retry
    await client.endAsync();

    const processed = t.system.ingest.waitProcessed(`${device.topicRoot}event`, 2);
    await t.system.startDevices();
    await processed;
    const events = await t.db
      .selectFrom("device_events")
      .select("msg_id")
      .where("device_id", "=", device.id)
      .execute();
    expect(events).toEqual([{ msg_id: "sos-while-away" }]);
    const alerts = await t.db
      .selectFrom("alerts")
      .select(["kind", "severity"])
      .where("resident_id", "=", residentId)
      .execute();
    expect(alerts).toEqual([{ kind: "sos", severity: "critical" }]);
  });

  it("the broker's ACL keeps a device to its own topics", async () => {
    const a = await registerDevice(t, daughter.token, residentId);
    const b = await registerDevice(t, daughter.token, residentId);
    await mosquitto.addUsers([await deviceUser(t, a), await deviceUser(t, b)]);
    // The broker restarted to read the new passwords; kincare's sessions reconnect on their own.
    const client = await connect(a);
    // Mosquitto acknowledges and drops a forbidden MQTT 3.1.1 publish: only the allowed one arrives.
    const own = t.system.ingest.waitProcessed(`${a.topicRoot}event`);
    await client.publishAsync(`${b.topicRoot}event`, event(t, "spoofed", "sos"), { qos: 1 });
    await client.publishAsync(`${a.topicRoot}event`, event(t, "own", "check_in"), { qos: 1 });
    await own;
    await client.endAsync();
    const rows = await t.db
      .selectFrom("device_events")
      .select(["device_id", "msg_id"])
      .where("device_id", "in", [a.id, b.id])
      .execute();
    expect(rows).toEqual([{ device_id: a.id, msg_id: "own" }]);
    await t.system.stopDevices({ endMqttSessions: true });
  });
});

describe("two kincare processes in one shared group", () => {
  it("split the device stream and store each message once", async () => {
    const one = await createTestApp({
      env: mqttEnv({ MQTT_SHARED_GROUP: "kc", MQTT_CLIENT_ID: `kc-one-${process.pid}` }),
    });
    apps.push(one);
    const two = await createTestApp({
      testDb: one.testDb,
      env: mqttEnv({ MQTT_SHARED_GROUP: "kc", MQTT_CLIENT_ID: `kc-two-${process.pid}` }),
    });
    apps.push(two);
    const daughter = await signUpFamily(one);
    const residentId = (await createResident(one, daughter.token, { relationship: "daughter" })).id;
    const device = await registerDevice(one, daughter.token, residentId, {
      kind: "pulse_oximeter",
    });
    await mosquitto.addUsers([await deviceUser(one, device)]);
    await one.system.startDevices();
    await two.system.startDevices();

    const client = await connect(device);
    const n = 60;
    for (let i = 0; i < n; i++) {
      await client.publishAsync(
        `${device.topicRoot}telemetry`,
        telemetry(one, `m${i}`, [{ type: "spo2", unit: "%", value: 97 }]),
        { qos: 1 },
      );
    }
    await client.endAsync();
    const count = async () =>
      Number(
        (
          await one.db
            .selectFrom("readings")
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .where("device_id", "=", device.id)
            .executeTakeFirstOrThrow()
        ).n,
      );
    await eventually(async () => (await count()) === n);
    expect(one.system.ingest.stats.stored).toBeGreaterThan(0);
    expect(two.system.ingest.stats.stored).toBeGreaterThan(0);
    expect(one.system.ingest.stats.stored + two.system.ingest.stats.stored).toBe(n);
    expect(one.system.ingest.stats.duplicates + two.system.ingest.stats.duplicates).toBe(0);
  });
});
