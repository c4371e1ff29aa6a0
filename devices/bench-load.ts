// The ingest benchmark's load generator, run as a child process so that it never shares an event
// loop with the broker it measures. It connects as every device it is given and keeps each one's
// window of QoS 1 telemetry messages in flight: a new message goes out only when one is
// acknowledged (PUBACK), as a real device with a bounded send queue would behave. It reports
// acknowledged messages and publish-to-PUBACK latency to its parent over IPC.
import mqtt, { type MqttClient } from "mqtt";
import type { DeviceKind } from "../src/devices/devices.table";
import { Person, seededRng } from "./vitals";

export interface LoadDevice {
  id: string;
  secret: string;
  kind: DeviceKind;
  timeZone: string;
}

export type ToLoad =
  | {
      type: "connect";
      url: string;
      topicPrefix: string;
      devices: LoadDevice[];
      window: number;
      abnormal: number;
    }
  | { type: "start"; tag: string }
  /**
   * On an external broker, whose PUBACK is not a commit: publish no more than `upTo` messages
   * since "start" (the parent sends what kincare stored plus the window of every device).
   */
  | { type: "credit"; upTo: number }
  | { type: "mark" }
  | { type: "report" }
  | { type: "halt" }
  | { type: "disconnect" };

export interface LoadReport {
  acked: number;
  elapsedMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  inFlight: number;
  errors: number;
  /** CPU time this process used since the mark. */
  cpuMs: number;
}

export type FromLoad =
  | { type: "connected"; ms: number }
  | { type: "progress"; acked: number; inFlight: number; errors: number }
  | { type: "marked" }
  | ({ type: "report" } & LoadReport)
  | { type: "halted"; acked: number }
  | { type: "disconnected" }
  | { type: "failed"; message: string };

/** Latency buckets of 0.1 ms up to 60 s: a fixed cost, whatever the run's length. */
class Histogram {
  private readonly buckets = new Uint32Array(600_000);
  count = 0;
  max = 0;
  add(ms: number) {
    const i = Math.min(this.buckets.length - 1, Math.floor(ms * 10));
    this.buckets[i]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }
  quantile(q: number): number {
    const target = Math.ceil(this.count * q);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= target && seen > 0) return (i + 1) / 10;
    }
    return 0;
  }
  reset() {
    this.buckets.fill(0);
    this.count = 0;
    this.max = 0;
  }
}

interface Sender {
  device: LoadDevice;
  client: MqttClient;
  topic: string;
  person: Person;
  seq: number;
  inFlight: number;
}

const send = (message: FromLoad) => process.send?.(message);

let senders: Sender[] = [];
let window = 1;
let abnormal = 0;
let running = false;
let tag = "m";
let acked = 0;
/** Acknowledged since "start", warm-up included: what must be on disk afterwards. */
let total = 0;
let errors = 0;
let inFlight = 0;
let markedAt = performance.now();
let cpuAtMark = process.cpuUsage();
const latency = new Histogram();
let onIdle: (() => void) | null = null;
let published = 0;
let credit = Number.POSITIVE_INFINITY;
/** Devices with room in their window that wait for credit. */
let waiting: Sender[] = [];

function publishNext(s: Sender) {
  if (!running || s.inFlight >= window || !s.client.connected) return;
  if (published >= credit) {
    waiting.push(s);
    return;
  }
  published++;
  // A zero-padded counter, as in the protocol example ("bp-000412").
  const msgId = `${tag}-${String(++s.seq).padStart(9, "0")}`;
  const now = new Date();
  const payload = JSON.stringify({
    msgId,
    ts: now.getTime(),
    readings: s.person.readings(s.device.kind, now, abnormal),
  });
  s.inFlight++;
  inFlight++;
  const sentAt = performance.now();
  s.client.publish(s.topic, payload, { qos: 1 }, (error) => {
    s.inFlight--;
    inFlight--;
    if (error) errors++;
    else {
      acked++;
      total++;
      latency.add(performance.now() - sentAt);
    }
    if (running) publishNext(s);
    else if (inFlight === 0) onIdle?.();
  });
}

async function connectAll(m: Extract<ToLoad, { type: "connect" }>) {
  window = m.window;
  abnormal = m.abnormal;
  const started = performance.now();
  const list: Sender[] = [];
  // A few dozen at a time, as a fleet reconnecting after an outage does when it backs off.
  const queue = [...m.devices];
  const connectOne = async (device: LoadDevice) => {
    const client = await mqtt.connectAsync(m.url, {
      username: device.id,
      password: device.secret,
      clientId: `bench-${device.id}`,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      keepalive: 120,
    });
    client.on("error", () => errors++);
    list.push({
      device,
      client,
      topic: `${m.topicPrefix}/devices/${device.id}/telemetry`,
      person: new Person(seededRng(list.length + 1), device.timeZone),
      seq: 0,
      inFlight: 0,
    });
  };
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) await connectOne(d);
    }),
  );
  senders = list;
  send({ type: "connected", ms: Math.round(performance.now() - started) });
}

function report(): LoadReport {
  return {
    acked,
    elapsedMs: performance.now() - markedAt,
    p50Ms: latency.quantile(0.5),
    p99Ms: latency.quantile(0.99),
    maxMs: latency.max,
    inFlight,
    errors,
    cpuMs: (() => {
      const cpu = process.cpuUsage(cpuAtMark);
      return (cpu.user + cpu.system) / 1000;
    })(),
  };
}

const progress = setInterval(() => send({ type: "progress", acked, inFlight, errors }), 1_000);

process.on("message", (m: ToLoad) => {
  const handle = async () => {
    switch (m.type) {
      case "connect":
        await connectAll(m);
        return;
      case "credit": {
        credit = m.upTo;
        const ready = waiting;
        waiting = [];
        for (const s of ready) publishNext(s);
        return;
      }
      case "start":
        tag = m.tag;
        total = 0;
        published = 0;
        waiting = [];
        running = true;
        for (const s of senders) for (let i = 0; i < window; i++) publishNext(s);
        return;
      case "mark":
        acked = 0;
        errors = 0;
        latency.reset();
        markedAt = performance.now();
        cpuAtMark = process.cpuUsage();
        send({ type: "marked" });
        return;
      case "report":
        send({ type: "report", ...report() });
        return;
      case "halt": {
        running = false;
        waiting = [];
        credit = Number.POSITIVE_INFINITY;
        if (inFlight > 0) await new Promise<void>((r) => (onIdle = r));
        onIdle = null;
        send({ type: "halted", acked: total });
        return;
      }
      case "disconnect":
        await Promise.all(senders.map((s) => s.client.endAsync().catch(() => undefined)));
        senders = [];
        send({ type: "disconnected" });
        return;
    }
  };
  handle().catch((error: Error) => send({ type: "failed", message: error.message }));
});

process.on("disconnect", () => {
  clearInterval(progress);
  process.exit(0);
});
