// The SOS benchmark's device side, run as a child process (npm run bench:sos forks it), so that
// the simulated devices never share an event loop with the kincare they load.
//
// Two kinds of devices, each its own MQTT connection:
//  - telemetry devices keep a background load at QoS 1: at a fixed rate (a token bucket spread
//    round-robin over the devices, each with at most `window` messages unacknowledged), or as a
//    flood (every device keeps its window full: a new message as soon as a PUBACK comes);
//  - SOS pendants, subscribed to their cmd topic, press `sos` when told (a schedule of offsets)
//    and report, for each press, when it was published and acknowledged, and when the device
//    got `sos_received`. Times are epoch milliseconds with sub-millisecond precision
//    (performance.timeOrigin + performance.now()), comparable with the parent's own.
import mqtt, { type MqttClient } from "mqtt";
import type { DeviceKind } from "../src/devices/devices.table";
import { Person, seededRng } from "./vitals";

export interface SosLoadDevice {
  id: string;
  secret: string;
  kind: DeviceKind;
  timeZone: string;
}

export interface Press {
  deviceId: string;
  /** When to press, in ms after the schedule was received. */
  offsetMs: number;
  msgId: string;
}

export type ToSosLoad =
  | {
      type: "connect";
      url: string;
      topicPrefix: string;
      telemetry: SosLoadDevice[];
      sos: SosLoadDevice[];
    }
  | { type: "rate"; perS: number; window: number; abnormal: number; tag: string }
  | { type: "flood"; window: number; abnormal: number; tag: string }
  | { type: "count" }
  | { type: "press"; presses: Press[] }
  | { type: "halt" }
  | { type: "disconnect" };

export type FromSosLoad =
  | { type: "connected"; ms: number }
  | { type: "progress"; acked: number; inFlight: number; errors: number }
  | { type: "count"; acked: number; at: number; cpuMs: number; errors: number }
  | { type: "pressed"; deviceId: string; msgId: string; at: number }
  | { type: "press_acked"; deviceId: string; msgId: string; at: number; error: string | null }
  | { type: "command"; deviceId: string; cmdType: string; alertId: string | null; at: number }
  | { type: "halted"; acked: number }
  | { type: "disconnected" }
  | { type: "failed"; message: string };

const now = () => performance.timeOrigin + performance.now();
const send = (message: FromSosLoad) => process.send?.(message);

interface Sender {
  device: SosLoadDevice;
  client: MqttClient;
  topic: string;
  person: Person;
  seq: number;
  inFlight: number;
}

let senders: Sender[] = [];
const pendants = new Map<string, { client: MqttClient; topic: string }>();
let mode: "off" | "rate" | "flood" = "off";
let window = 1;
let abnormal = 0;
let tag = "t";
let perS = 0;
let tokens = 0;
let lastTick = 0;
let cursor = 0;
let ticker: NodeJS.Timeout | undefined;
let acked = 0;
let errors = 0;
let inFlight = 0;
let onIdle: (() => void) | null = null;

function publishOne(s: Sender) {
  const msgId = `${tag}-${String(++s.seq).padStart(9, "0")}`;
  const at = new Date();
  const payload = JSON.stringify({
    msgId,
    ts: at.getTime(),
    readings: s.person.readings(s.device.kind, at, abnormal),
  });
  s.inFlight++;
  inFlight++;
  s.client.publish(s.topic, payload, { qos: 1 }, (error) => {
    s.inFlight--;
    inFlight--;
    if (error) errors++;
    else acked++;
    if (mode === "flood") fill(s);
    if (inFlight === 0) onIdle?.();
  });
}

/** Flood: keep this device's window full. */
function fill(s: Sender) {
  while (mode === "flood" && s.inFlight < window && s.client.connected) publishOne(s);
}

/** Rate: hand out the tokens earned since the last tick, round-robin over devices with room. */
function tick() {
  const t = performance.now();
  const dt = t - lastTick;
  lastTick = t;
  if (mode !== "rate") return;
  // At most a tenth of a second's worth at once: a stall is not made up in a burst.
  tokens = Math.min(tokens + (perS * dt) / 1000, Math.max(perS / 10, 1));
  let idlePass = 0;
  while (tokens >= 1 && senders.length > 0 && idlePass < senders.length) {
    const s = senders[cursor]!;
    cursor = (cursor + 1) % senders.length;
    if (s.inFlight >= window || !s.client.connected) {
      idlePass++;
      continue;
    }
    idlePass = 0;
    tokens--;
    publishOne(s);
  }
}

async function connectOne(url: string, device: SosLoadDevice, clientId: string) {
  const client = await mqtt.connectAsync(url, {
    username: device.id,
    password: device.secret,
    clientId,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
    keepalive: 120,
  });
  client.on("error", () => errors++);
  return client;
}

async function connectAll(m: Extract<ToSosLoad, { type: "connect" }>) {
  const started = performance.now();
  const queue: { device: SosLoadDevice; sos: boolean }[] = [
    ...m.sos.map((device) => ({ device, sos: true })),
    ...m.telemetry.map((device) => ({ device, sos: false })),
  ];
  const list: Sender[] = [];
  let n = 0;
  const one = async ({ device, sos }: { device: SosLoadDevice; sos: boolean }) => {
    const client = await connectOne(m.url, device, `bench-sos-${device.id}`);
    const root = `${m.topicPrefix}/devices/${device.id}`;
    if (sos) {
      client.on("message", (_topic, payload) => {
        const at = now();
        try {
          const cmd = JSON.parse(payload.toString("utf8")) as { type?: string; alertId?: string };
          send({
            type: "command",
            deviceId: device.id,
            cmdType: String(cmd.type),
            alertId: cmd.alertId ?? null,
            at,
          });
        } catch {
          errors++;
        }
      });
      await client.subscribeAsync(`${root}/cmd`, { qos: 1 });
      pendants.set(device.id, { client, topic: `${root}/event` });
      return;
    }
    list.push({
      device,
      client,
      topic: `${root}/telemetry`,
      person: new Person(seededRng(++n), device.timeZone),
      seq: 0,
      inFlight: 0,
    });
  };
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) await one(d);
    }),
  );
  senders = list;
  send({ type: "connected", ms: Math.round(performance.now() - started) });
}

function press(p: Press) {
  const pendant = pendants.get(p.deviceId);
  if (!pendant) {
    send({ type: "failed", message: `no pendant ${p.deviceId}` });
    return;
  }
  const at = now();
  const payload = JSON.stringify({ msgId: p.msgId, ts: Date.now(), type: "sos" });
  send({ type: "pressed", deviceId: p.deviceId, msgId: p.msgId, at });
  pendant.client.publish(pendant.topic, payload, { qos: 1 }, (error) =>
    send({
      type: "press_acked",
      deviceId: p.deviceId,
      msgId: p.msgId,
      at: now(),
      error: error ? error.message : null,
    }),
  );
}

const cpuAtStart = process.cpuUsage();
const progress = setInterval(() => send({ type: "progress", acked, inFlight, errors }), 1_000);

process.on("message", (m: ToSosLoad) => {
  const handle = async () => {
    switch (m.type) {
      case "connect":
        await connectAll(m);
        return;
      case "rate":
        mode = "rate";
        perS = m.perS;
        window = m.window;
        abnormal = m.abnormal;
        tag = m.tag;
        tokens = 0;
        lastTick = performance.now();
        ticker ??= setInterval(tick, 5);
        return;
      case "flood":
        mode = "flood";
        window = m.window;
        abnormal = m.abnormal;
        tag = m.tag;
        for (const s of senders) fill(s);
        return;
      case "count": {
        const cpu = process.cpuUsage(cpuAtStart);
        send({ type: "count", acked, at: now(), cpuMs: (cpu.user + cpu.system) / 1000, errors });
        return;
      }
      case "press":
        for (const p of m.presses) setTimeout(() => press(p), p.offsetMs);
        return;
      case "halt":
        mode = "off";
        if (ticker) clearInterval(ticker);
        ticker = undefined;
        if (inFlight > 0) await new Promise<void>((r) => (onIdle = r));
        onIdle = null;
        send({ type: "halted", acked });
        return;
      case "disconnect":
        await Promise.all(
          [...senders.map((s) => s.client), ...[...pendants.values()].map((p) => p.client)].map(
            (c) => c.endAsync().catch(() => undefined),
          ),
        );
        senders = [];
        pendants.clear();
        send({ type: "disconnected" });
        return;
    }
  };
  handle().catch((error: Error) => send({ type: "failed", message: error.message }));
});

process.on("disconnect", () => {
  clearInterval(progress);
  if (ticker) clearInterval(ticker);
  process.exit(0);
});
