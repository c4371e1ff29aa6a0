// The files kincare generates for an external Mosquitto, proved on a real broker: password
// hashes it accepts, an ACL that keeps each device on its own topics, and persistent sessions
// that hold QoS 1 messages for kincare while it is away, across a broker restart too.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  mosquittoAclFor,
  mosquittoPasswordHash,
  mosquittoPasswordLine,
} from "../src/devices/mosquitto";
import { type Mosquitto, startMosquitto } from "./helpers/mosquitto";

const PREFIX = "kctest/v1";
const SERVICE = { username: "kincare", password: "service-secret" };
const DEV_A = { username: "dev-a", password: "secret-a" };
const DEV_B = { username: "dev-b", password: "secret-b" };
const topic = (device: string, leaf: string) => `${PREFIX}/devices/${device}/${leaf}`;

// Long enough for a message the broker meant to deliver to arrive on loopback many times over.
const QUIET_MS = 500;

const clients: MqttClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
});

function connectAsync(broker: Mosquitto, opts: IClientOptions): Promise<MqttClient> {
  return mqtt
    .connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, ...opts })
    .then((client) => {
      clients.push(client);
      return client;
    });
}

/** Every message a client receives, listened for from before its CONNACK. */
function received(client: MqttClient): { topic: string; payload: string }[] {
  const seen: { topic: string; payload: string }[] = [];
  client.on("message", (topic, payload) => seen.push({ topic, payload: payload.toString() }));
  return seen;
}

function nextMessage(client: MqttClient, wanted: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("message", onMessage);
      reject(new Error(`no message on ${wanted} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (topic: string, payload: Buffer) => {
      if (topic !== wanted) return;
      clearTimeout(timer);
      client.off("message", onMessage);
      resolve(payload.toString());
    };
    client.on("message", onMessage);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Mosquitto password hashes", () => {
  test("match what mosquitto_passwd writes for the same password and salt", () => {
    const dir = mkdtempSync(join(tmpdir(), "kincare-passwd-"));
    try {
      const file = join(dir, "passwords");
      const password = "pä ss:wörd with spaces";
      execFileSync("/usr/bin/mosquitto_passwd", ["-c", "-b", file, "dev-x", password]);
      const line = readFileSync(file, "utf8").trimEnd();
      const theirs = line.slice("dev-x:".length);
      expect(theirs).toMatch(/^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
      const salt = Buffer.from(theirs.split("$")[3]!, "base64");

      expect(mosquittoPasswordHash(password, salt)).toBe(theirs);
      expect(mosquittoPasswordLine("dev-x", mosquittoPasswordHash(password, salt))).toBe(
        `${line}\n`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("use a fresh 12-byte salt each time, and refuse any other length Mosquitto 2.0 rejects", () => {
    const a = mosquittoPasswordHash("same");
    const b = mosquittoPasswordHash("same");
    expect(a).not.toBe(b);
    expect(Buffer.from(a.split("$")[3]!, "base64")).toHaveLength(12);
    expect(() => mosquittoPasswordHash("x", Buffer.alloc(16))).toThrow(/12-byte salt/);
  });

  test("refuse usernames the password file cannot hold", () => {
    expect(() => mosquittoPasswordLine("a:b", "$7$")).toThrow();
    expect(() => mosquittoPasswordLine(" a", "$7$")).toThrow();
    expect(() => mosquittoPasswordLine("", "$7$")).toThrow();
  });
});

describe("a Mosquitto configured with kincare's password file and ACL", () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto({
      users: [
        { username: SERVICE.username, hash: mosquittoPasswordHash(SERVICE.password) },
        { username: DEV_A.username, hash: mosquittoPasswordHash(DEV_A.password) },
        { username: DEV_B.username, hash: mosquittoPasswordHash(DEV_B.password) },
      ],
      acl: mosquittoAclFor(PREFIX, SERVICE.username),
    });
  });
  afterAll(async () => {
    await broker?.stop();
  });

  test("accepts a device with its password and refuses it with a wrong one", async () => {
    const ok = await connectAsync(broker, { ...DEV_A, clientId: "dev-a-login" });
    expect(ok.connected).toBe(true);

    await expect(
      connectAsync(broker, { username: DEV_A.username, password: "wrong", clientId: "dev-a-bad" }),
    ).rejects.toMatchObject({ code: 5 }); // 3.1.1 CONNACK "not authorised"
    await expect(
      connectAsync(broker, { username: "nobody", password: "x", clientId: "nobody" }),
    ).rejects.toMatchObject({ code: 5 });
    await expect(connectAsync(broker, { clientId: "anonymous" })).rejects.toMatchObject({
      code: 5,
    });
  });

  test("delivers a device's telemetry to the service user and drops a publish on another device's topic", async () => {
    const service = await connectAsync(broker, { ...SERVICE, clientId: "svc-telemetry" });
    const seen = received(service);
    const [grant] = await service.subscribeAsync(topic("+", "telemetry"), { qos: 1 });
    expect(grant?.qos).toBe(1);

    const devA = await connectAsync(broker, { ...DEV_A, clientId: "dev-a-telemetry" });
    const own = nextMessage(service, topic("dev-a", "telemetry"));
    await devA.publishAsync(topic("dev-a", "telemetry"), '{"msgId":"1"}', { qos: 1 });
    expect(await own).toBe('{"msgId":"1"}');

    // MQTT 3.1.1 has no way to say no: Mosquitto PUBACKs the forged message and discards it.
    const puback = await devA.publishAsync(topic("dev-b", "telemetry"), '{"msgId":"forged"}', {
      qos: 1,
    });
    expect(puback).toBeDefined();
    const marker = nextMessage(service, topic("dev-a", "telemetry"));
    await devA.publishAsync(topic("dev-a", "telemetry"), '{"msgId":"2"}', { qos: 1 });
    expect(await marker).toBe('{"msgId":"2"}');
    await sleep(QUIET_MS);

    expect(seen).toEqual([
      { topic: topic("dev-a", "telemetry"), payload: '{"msgId":"1"}' },
      { topic: topic("dev-a", "telemetry"), payload: '{"msgId":"2"}' },
    ]);
  });

  test("tells an MQTT 5 device its forged publish was not authorised", async () => {
    const devA = await connectAsync(broker, {
      ...DEV_A,
      clientId: "dev-a-v5",
      protocolVersion: 5,
    });
    await expect(
      devA.publishAsync(topic("dev-b", "event"), '{"msgId":"f"}', { qos: 1 }),
    ).rejects.toMatchObject({ code: 0x87 });
    // The connection survives the refusal and can still publish on its own topics.
    await expect(
      devA.publishAsync(topic("dev-a", "event"), '{"msgId":"ok"}', { qos: 1 }),
    ).resolves.toBeDefined();
  });

  test("lets a device read its own cmd topic and nobody else's", async () => {
    const devA = await connectAsync(broker, { ...DEV_A, clientId: "dev-a-cmd" });
    const seen = received(devA);
    const grants = await devA.subscribeAsync(
      { [topic("dev-a", "cmd")]: { qos: 1 }, [topic("dev-b", "cmd")]: { qos: 1 }, "#": { qos: 1 } },
      {},
    );
    // Mosquitto 2.0 grants every subscription and applies the read rules to each message it
    // would deliver, so the SUBACK says nothing about what the device will see.
    expect(grants.map((g) => g.qos)).toEqual([1, 1, 1]);

    const service = await connectAsync(broker, { ...SERVICE, clientId: "svc-cmd" });
    await service.publishAsync(topic("dev-b", "cmd"), '{"cmdId":"b1"}', { qos: 1 });
    const own = nextMessage(devA, topic("dev-a", "cmd"));
    await service.publishAsync(topic("dev-a", "cmd"), '{"cmdId":"a1"}', { qos: 1 });
    expect(await own).toBe('{"cmdId":"a1"}');
    await sleep(QUIET_MS);

    expect(seen).toEqual([{ topic: topic("dev-a", "cmd"), payload: '{"cmdId":"a1"}' }]);
  });

  test("delivers events to the service user through a shared subscription", async () => {
    const service = await connectAsync(broker, { ...SERVICE, clientId: "svc-shared" });
    const [grant] = await service.subscribeAsync(`$share/kincare/${topic("+", "event")}`, {
      qos: 1,
    });
    expect(grant?.qos).toBe(1);

    const devB = await connectAsync(broker, { ...DEV_B, clientId: "dev-b-event" });
    const sos = nextMessage(service, topic("dev-b", "event"));
    await devB.publishAsync(topic("dev-b", "event"), '{"msgId":"e1","type":"sos"}', { qos: 1 });
    expect(await sos).toBe('{"msgId":"e1","type":"sos"}');
  });

  test("keeps the service user from posing as a device", async () => {
    const service = await connectAsync(broker, { ...SERVICE, clientId: "svc-forger" });
    const seen = received(service);
    await service.subscribeAsync(topic("+", "telemetry"), { qos: 1 });
    await service.publishAsync(topic("dev-a", "telemetry"), '{"msgId":"svc"}', { qos: 1 });
    await sleep(QUIET_MS);
    expect(seen).toEqual([]);
  });
});

describe("a persistent session of the service user on Mosquitto", () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto({
      users: [SERVICE, DEV_A],
      acl: mosquittoAclFor(PREFIX, SERVICE.username),
      persistence: true,
    });
  });
  afterAll(async () => {
    await broker?.stop();
  });

  // Listens before CONNACK: the broker sends the queued messages right behind it.
  async function resumeSession(): Promise<{
    client: MqttClient;
    sessionPresent: boolean;
    seen: { topic: string; payload: string }[];
  }> {
    const client = mqtt.connect(broker.url, {
      ...SERVICE,
      clientId: "kincare-events",
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    clients.push(client);
    const seen = received(client);
    const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      client.once("connect", resolve);
      client.once("error", reject);
    });
    return { client, sessionPresent: connack.sessionPresent, seen };
  }

  async function publishAsDevice(payload: string): Promise<void> {
    const devA = await connectAsync(broker, { ...DEV_A, clientId: "dev-a-sos" });
    await devA.publishAsync(topic("dev-a", "event"), payload, { qos: 1 });
    await devA.endAsync();
  }

  async function waitFor(seen: { payload: string }[], payload: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!seen.some((m) => m.payload === payload)) {
      if (Date.now() > deadline) throw new Error(`never received ${payload}: ${broker.logText()}`);
      await sleep(20);
    }
  }

  test("receives a QoS 1 event published while it was away, after a reconnect and after a broker restart", async () => {
    const first = await resumeSession();
    await first.client.subscribeAsync(topic("+", "event"), { qos: 1 });
    await first.client.endAsync();

    await publishAsDevice('{"msgId":"sos-1","type":"sos"}');
    const second = await resumeSession();
    expect(second.sessionPresent).toBe(true);
    await waitFor(second.seen, '{"msgId":"sos-1","type":"sos"}');
    await second.client.endAsync();

    await publishAsDevice('{"msgId":"sos-2","type":"sos"}');
    await broker.restart();
    const third = await resumeSession();
    expect(third.sessionPresent).toBe(true);
    await waitFor(third.seen, '{"msgId":"sos-2","type":"sos"}');
    await sleep(QUIET_MS);

    expect(second.seen.map((m) => m.payload)).toEqual(['{"msgId":"sos-1","type":"sos"}']);
    expect(third.seen.map((m) => m.payload)).toEqual(['{"msgId":"sos-2","type":"sos"}']);
  });
});
