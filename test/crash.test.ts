// A kill of kincare between a device's publish and its commit: nothing the device was told was
// delivered is lost, and nothing is stored twice. Real processes, the embedded broker over TCP.
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, freePort, type Spawned, spawnTs } from "./helpers/processes";
import { residentInput } from "./helpers/residents.factory";
import { createTestDatabase, type TestDatabase } from "./helpers/test-db";

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const db of databases) await db.drop();
});

const OPERATOR = { email: "desk@example.org", password: "operator password 1" };

async function startKincare(
  testDb: TestDatabase,
  port: number,
  mqttPort: number,
): Promise<Spawned> {
  const proc = spawnTs("src/main.ts", {
    ...testDb.env,
    PORT: String(port),
    HOST: "127.0.0.1",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(mqttPort),
    MQTT_URL: "",
    LOG_LEVEL: "warn",
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    BOOTSTRAP_OPERATOR_EMAIL: OPERATOR.email,
    BOOTSTRAP_OPERATOR_PASSWORD: OPERATOR.password,
  });
  await eventually(
    () =>
      fetch(`http://127.0.0.1:${port}/readyz`)
        .then((r) => r.ok)
        .catch(() => false),
    { what: "kincare ready" },
  );
  return proc;
}

async function api(
  port: number,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return (await res.json()) as any;
}

describe("a crash of kincare (embedded broker)", () => {
  it("loses nothing a device was told was delivered, and doubles nothing", async () => {
    const testDb = await createTestDatabase();
    databases.push(testDb);
    const port = await freePort();
    const mqttPort = await freePort();
    let kincare = await startKincare(testDb, port, mqttPort);

    const { session } = await api(port, "POST", "/v1/auth/login", null, {
      login: OPERATOR.email,
      password: OPERATOR.password,
    });
    const resident = await api(port, "POST", "/v1/residents", session.token, residentInput());
    const { credentials } = await api(
      port,
      "POST",
      `/v1/residents/${resident.id}/devices`,
      session.token,
      {
        kind: "pulse_oximeter",
        model: "OX",
        serial: "crash-1",
      },
    );

    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      username: credentials.deviceId,
      password: credentials.secret,
      clientId: credentials.deviceId,
      protocolVersion: 4,
      reconnectPeriod: 200,
      // The device keeps every message until its PUBACK and sends it again after reconnecting.
      queueQoSZero: false,
    });
    device.on("error", () => undefined);
    const acked = new Set<string>();
    const total = 400;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const msgId = `m${i}`;
      const payload = JSON.stringify({
        msgId,
        ts: Date.now(),
        readings: [{ type: "spo2", unit: "%", value: 95 + (i % 4) }],
      });
      sends.push(
        device
          .publishAsync(`${credentials.mqtt.topicRoot}telemetry`, payload, { qos: 1 })
          .then(() => {
            acked.add(msgId);
          }),
      );
      if (i === total / 4) {
        // Kill kincare with messages in flight: some committed and acknowledged, some not.
        await eventually(async () => acked.size > 20, { what: "some acknowledgements" });
        kincare.child.kill("SIGKILL");
        await kincare.exited;
        const ackedAtCrash = new Set(acked);
        const { db, close } = testDb.open();
        const stored = new Set(
          (await db.selectFrom("readings").select("msg_id").execute()).map((r) => r.msg_id),
        );
        await close();
        // Every message acknowledged before the crash is on disk.
        for (const id of ackedAtCrash)
          expect(stored.has(id), `${id} was acknowledged but not stored`).toBe(true);
        kincare = await startKincare(testDb, port, mqttPort);
      }
    }
    await Promise.all(sends);
    await device.endAsync();
    kincare.child.kill("SIGTERM");
    await kincare.exited;

    const { db, close } = testDb.open();
    const rows = await db
      .selectFrom("readings")
      .select("msg_id")
      .where("device_id", "=", credentials.deviceId)
      .execute();
    await close();
    expect(acked.size).toBe(total);
    expect(rows).toHaveLength(total);
    expect(new Set(rows.map((r) => r.msg_id)).size).toBe(total);
  }, 90_000);
});
