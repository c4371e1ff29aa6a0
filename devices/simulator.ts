// npm run devices:simulate -- [--register-demo] [--devices N] [--url mqtt://host:port]
//   [--rate 1/min] [--sos 0.5/h] [--cancel 0.2] [--check-in 2/day] [--falls 0.05/day]
//   [--offline 0.2/h] [--offline-for 60s] [--abnormal 0.03] [--speed 1] [--duration 10m]
//   [--credentials ./data/simulator-devices.json] [--seed N]
//
// Real devices, simulated: each one connects to kincare's MQTT broker with its own id and secret
// and speaks devices/PROTOCOL.md exactly: a retained `online` status and an `offline` Last Will,
// QoS 1 telemetry and events with a msgId unique to the device, heartbeats at the device's own
// interval, confirmations of commands. Vitals follow a daily rhythm with now and then an abnormal
// episode (devices/vitals.ts); SOS buttons are pressed, and sometimes cancelled as accidental;
// residents check in; devices drop off the network (no DISCONNECT, so the Last Will fires), keep
// what was not acknowledged and send it again, with its original time, when they are back.
//
// startSimulator() is the core, used by the CLI below and by test/simulator.test.ts.
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import mqtt, { type MqttClient } from "mqtt";
import { type Clock, systemClock } from "../src/clock";
import type { DeviceKind } from "../src/devices/devices.table";
import { localHour, measuresVitals, nextArrivalMs, Person, type Rng, seededRng } from "./vitals";

export interface SimulatedDevice {
  id: string;
  secret: string;
  kind: DeviceKind;
  heartbeatIntervalS: number;
  /** The resident's time zone: their day sets the rhythm of vitals, motion and doors. */
  timeZone?: string;
  /** How logs name the device (never its secret). */
  label?: string;
}

/** Rates per device and per hour of simulated time. */
export interface SimulatorRates {
  /** Telemetry messages of a measuring device (cuff, oximeter, thermometer, scale, meter, hub). */
  telemetry: number;
  /** SOS presses of a device with a button (SOS button or pendant, hub). */
  sos: number;
  /** "I'm fine" presses of a device with a button. */
  checkIn: number;
  /** Falls a fall detector reports. */
  falls: number;
  /** Times a device drops off the network. */
  offline: number;
}

export interface SimulatorOptions {
  url: string;
  topicPrefix: string;
  devices: SimulatedDevice[];
  /** Where message times come from (a test's fake clock); intervals always run on real time. */
  clock?: Clock;
  rates?: Partial<SimulatorRates>;
  /** Share of SOS presses the resident cancels within half a minute. */
  cancelShare?: number;
  /** Chance that a telemetry message starts an abnormal episode. */
  abnormal?: number;
  /** How long (simulated) a device stays off the network when it drops. */
  offlineForMs?: number;
  /** Divides every interval (simulated time runs this much faster); message times stay real. */
  speed?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface SimulatorStats {
  devices: number;
  online: number;
  telemetry: { sent: number; acked: number; readingsAcked: number };
  heartbeats: number;
  /** Acknowledged events by type. */
  events: Record<string, number>;
  /** Commands received from kincare, by type (each one confirmed on cmd/ack). */
  commands: Record<string, number>;
  drops: number;
  reconnects: number;
  /** Messages resent after a reconnect because their PUBACK never came. */
  resent: number;
  /** Telemetry dropped because a device's buffer was full while it was offline. */
  discarded: number;
  refused: number;
}

export interface Simulator {
  readonly stats: SimulatorStats;
  /** Drops a device's connection without DISCONNECT; it comes back after `forMs` (real time). */
  goOffline(deviceId: string, forMs?: number): void;
  stop(): Promise<void>;
}

const defaults: SimulatorRates = {
  telemetry: 60,
  sos: 0.5,
  checkIn: 0.1,
  falls: 0.002,
  offline: 0.2,
};
const buttonKinds = new Set<DeviceKind>(["sos_button", "sos_pendant", "hub"]);
/** What a device keeps while it cannot send: enough for hours of readings, never unbounded. */
const MAX_PENDING = 2_000;

interface Pending {
  topic: string;
  payload: string;
  kind: "telemetry" | "event" | "ack";
  readings: number;
  eventType?: string;
}

class DeviceSim {
  private client: MqttClient | null = null;
  private stopped = false;
  private offline = false;
  private refused = false;
  private seq = 0;
  private backoffMs = 1_000;
  private battery: number;
  private rssi: number;
  private lowBatterySent = false;
  private readonly pending = new Map<string, Pending>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly person: Person;
  private readonly root: string;
  private readonly runId: string;

  constructor(
    private readonly d: SimulatedDevice,
    private readonly o: Required<Omit<SimulatorOptions, "devices" | "rates" | "seed">> & {
      rates: SimulatorRates;
    },
    private readonly rng: Rng,
    private readonly stats: SimulatorStats,
  ) {
    this.person = new Person(rng, d.timeZone ?? "UTC");
    this.battery = 40 + rng() * 60;
    this.rssi = -55 - rng() * 25;
    this.root = `${o.topicPrefix}/devices/${d.id}/`;
    // Unique across runs too: kincare drops a msgId it has already stored as a retry.
    this.runId = `${Date.now().toString(36)}${Math.floor(rng() * 1296).toString(36)}`;
  }

  get name() {
    return this.d.label ?? this.d.id;
  }

  start() {
    this.connect();
    const { rates } = this.o;
    // Spread the first heartbeat and reading over the interval, as devices switched on at
    // different times would.
    this.every(this.d.heartbeatIntervalS * 1000, () => this.heartbeat());
    if (measuresVitals(this.d.kind))
      this.every(3_600_000 / rates.telemetry, () => this.telemetry());
    if (buttonKinds.has(this.d.kind)) {
      this.poisson(rates.sos, () => this.sos());
      this.poisson(rates.checkIn, () => this.event("check_in"));
    }
    if (this.d.kind === "fall_detector") this.poisson(rates.falls, () => this.event("fall"));
    if (this.d.kind === "motion_sensor")
      this.poisson(
        () => (this.daytime() ? 4 : 0.3),
        () => this.event("motion"),
      );
    if (this.d.kind === "door_sensor")
      this.poisson(
        () => (this.daytime() ? 0.6 : 0.02),
        () => this.event("door_open"),
      );
    this.poisson(rates.offline, () => this.goOffline(this.o.offlineForMs / this.o.speed));
  }

  async stop() {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const client = this.client;
    this.client = null;
    // A clean DISCONNECT once what is in flight is acknowledged: no Last Will.
    if (!client?.connected) {
      client?.end(true);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.endAsync(),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          client.end(true);
          resolve();
        }, 3_000);
      }),
    ]);
    clearTimeout(timer);
  }

  goOffline(forMs: number) {
    if (this.stopped || this.offline || !this.client?.connected) return;
    this.offline = true;
    this.stats.drops++;
    this.o.log(`${this.name} drops off the network for ${Math.round(forMs / 1000)} s`);
    // end(true) destroys the socket without DISCONNECT: the broker publishes the Last Will.
    this.client.end(true);
    this.later(forMs, () => {
      this.offline = false;
      this.stats.reconnects++;
      this.connect();
    });
  }

  private connect() {
    if (this.stopped || this.refused) return;
    const client = mqtt.connect(this.o.url, {
      username: this.d.id,
      password: this.d.secret,
      clientId: `sim-${this.d.id}`,
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      will: { topic: `${this.root}status`, payload: Buffer.from("offline"), qos: 1, retain: true },
    });
    this.client = client;
    let up = false;
    client.on("connect", () => {
      this.backoffMs = 1_000;
      up = true;
      this.stats.online++;
      client.subscribe(`${this.root}cmd`, { qos: 1 });
      client.publish(`${this.root}status`, "online", { qos: 1, retain: true });
      // What was not acknowledged before goes again, oldest first, with its original msgId.
      for (const [msgId, p] of this.pending) {
        this.stats.resent++;
        this.publish(msgId, p);
      }
    });
    client.on("message", (topic, payload) => this.command(topic, payload));
    client.on("error", (error) => {
      if ((error as { code?: number }).code === 5 || /not authorized/i.test(error.message)) {
        this.refused = true;
        this.stats.refused++;
        this.o.log(`${this.name} was refused by the broker (revoked, or its secret rotated)`);
      }
    });
    client.on("close", () => {
      if (up) {
        up = false;
        this.stats.online--;
      }
      if (client !== this.client || this.stopped || this.offline || this.refused) return;
      // Lost without being told: try again, backing off, with jitter so a fleet does not storm.
      const wait = this.backoffMs * (0.5 + this.rng());
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
      this.later(wait, () => this.connect());
    });
  }

  private publish(msgId: string, p: Pending) {
    const client = this.client;
    if (!client?.connected) return;
    client.publish(p.topic, p.payload, { qos: 1 }, (error) => {
      // No PUBACK (the connection went): it stays pending and goes again after a reconnect.
      if (error || !this.pending.delete(msgId)) return;
      if (p.kind === "telemetry") {
        this.stats.telemetry.acked++;
        this.stats.telemetry.readingsAcked += p.readings;
      } else if (p.kind === "event" && p.eventType) {
        this.stats.events[p.eventType] = (this.stats.events[p.eventType] ?? 0) + 1;
      }
    });
  }

  private send(channel: "telemetry" | "event", body: Record<string, unknown>, readings = 0) {
    const msgId = `${this.runId}-${String(++this.seq).padStart(6, "0")}`;
    const p: Pending = {
      topic: `${this.root}${channel}`,
      payload: JSON.stringify({ msgId, ...body }),
      kind: channel,
      readings,
      ...(typeof body.type === "string" ? { eventType: body.type } : {}),
    };
    if (this.pending.size >= MAX_PENDING) {
      // Full while offline: the oldest reading goes, never an event.
      for (const [id, old] of this.pending) {
        if (old.kind !== "telemetry") continue;
        this.pending.delete(id);
        this.stats.discarded++;
        break;
      }
    }
    this.pending.set(msgId, p);
    this.publish(msgId, p);
  }

  private telemetry() {
    const now = this.o.clock.now();
    const readings = this.person.readings(this.d.kind, now, this.o.abnormal);
    if (readings.length === 0) return;
    this.stats.telemetry.sent++;
    // Epoch milliseconds here, ISO-8601 for events: the protocol takes both.
    this.send("telemetry", { ts: now.getTime(), readings }, readings.length);
  }

  private event(type: string) {
    this.send("event", { ts: this.o.clock.now().toISOString(), type });
  }

  private sos() {
    this.o.log(`${this.name}: SOS pressed`);
    this.event("sos");
    if (this.rng() < this.o.cancelShare) {
      this.later((5_000 + this.rng() * 25_000) / this.o.speed, () => {
        this.o.log(`${this.name}: SOS cancelled (pressed by accident)`);
        this.event("sos_cancel");
      });
    }
  }

  private heartbeat() {
    const client = this.client;
    if (!client?.connected) return;
    // A battery lasts months: it drains slowly, warns once at 15% and is changed at 5%.
    this.battery -= (0.05 * this.d.heartbeatIntervalS) / 60;
    if (this.battery < 15 && !this.lowBatterySent) {
      this.lowBatterySent = true;
      this.event("low_battery");
    }
    if (this.battery < 5) {
      this.battery = 100;
      this.lowBatterySent = false;
    }
    this.rssi = Math.max(-100, Math.min(-40, this.rssi + (this.rng() - 0.5) * 4));
    const payload = JSON.stringify({
      ts: this.o.clock.now().getTime(),
      battery: Math.round(this.battery),
      rssi: Math.round(this.rssi),
    });
    client.publish(`${this.root}heartbeat`, payload, { qos: 1 }, (error) => {
      if (!error) this.stats.heartbeats++;
    });
  }

  private command(topic: string, payload: Buffer) {
    if (topic !== `${this.root}cmd`) return;
    let cmd: { cmdId?: unknown; type?: unknown };
    try {
      cmd = JSON.parse(payload.toString("utf8"));
    } catch {
      return;
    }
    if (typeof cmd.cmdId !== "string") return;
    const type = typeof cmd.type === "string" ? cmd.type : "unknown";
    this.stats.commands[type] = (this.stats.commands[type] ?? 0) + 1;
    if (type === "sos_received") this.o.log(`${this.name}: kincare has the alarm`);
    if (type === "sos_ack") this.o.log(`${this.name}: help is coming`);
    const ack: Pending = {
      topic: `${this.root}cmd/ack`,
      payload: JSON.stringify({ cmdId: cmd.cmdId }),
      kind: "ack",
      readings: 0,
    };
    this.pending.set(`ack-${cmd.cmdId}`, ack);
    this.publish(`ack-${cmd.cmdId}`, ack);
  }

  private daytime() {
    const h = localHour(this.o.clock.now(), this.d.timeZone ?? "UTC");
    return h >= 7 && h < 22;
  }

  private later(ms: number, fn: () => void) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(timer);
  }

  /** Every `ms` of simulated time, with ±10% jitter; the first one somewhere in the first period. */
  private every(ms: number, fn: () => void) {
    const period = ms / this.o.speed;
    const tick = () => {
      fn();
      this.later(period * (0.9 + this.rng() * 0.2), tick);
    };
    this.later(period * this.rng(), tick);
  }

  /** At random, `perHour` times an hour of simulated time on average. */
  private poisson(perHour: number | (() => number), fn: () => void) {
    const rate = () => (typeof perHour === "function" ? perHour() : perHour);
    const next = () => {
      const wait = nextArrivalMs(this.rng, (rate() * this.o.speed) / 3_600_000);
      if (!Number.isFinite(wait)) return;
      this.later(wait, () => {
        fn();
        next();
      });
    };
    next();
  }
}

export function startSimulator(options: SimulatorOptions): Simulator {
  const rng = seededRng(options.seed ?? Date.now());
  const o = {
    url: options.url,
    topicPrefix: options.topicPrefix,
    clock: options.clock ?? systemClock,
    rates: { ...defaults, ...options.rates },
    cancelShare: options.cancelShare ?? 0.2,
    abnormal: options.abnormal ?? 0.03,
    offlineForMs: options.offlineForMs ?? 60_000,
    speed: options.speed ?? 1,
    log: options.log ?? (() => undefined),
  };
  const stats: SimulatorStats = {
    devices: options.devices.length,
    online: 0,
    telemetry: { sent: 0, acked: 0, readingsAcked: 0 },
    heartbeats: 0,
    events: {},
    commands: {},
    drops: 0,
    reconnects: 0,
    resent: 0,
    discarded: 0,
    refused: 0,
  };
  const sims = new Map(
    options.devices.map((d) => [
      d.id,
      new DeviceSim(d, o, seededRng(Math.floor(rng() * 2 ** 32)), stats),
    ]),
  );
  for (const sim of sims.values()) sim.start();
  return {
    stats,
    goOffline(deviceId, forMs = o.offlineForMs) {
      sims.get(deviceId)?.goOffline(forMs);
    },
    async stop() {
      await Promise.all([...sims.values()].map((s) => s.stop()));
    },
  };
}

/** "2/h", "30/min", "4/day", "1/s", or a bare number (per hour): events per hour. */
export function parseRate(text: string): number {
  const m = /^\s*([\d.]+)\s*(?:\/\s*(s|sec|min|h|hour|d|day))?\s*$/.exec(text);
  if (!m) throw new Error(`not a rate: ${text} (try 2/h, 30/min, 4/day)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "h";
  const perHour = { s: 3600, sec: 3600, min: 60, h: 1, hour: 1, d: 1 / 24, day: 1 / 24 }[unit]!;
  return n * perHour;
}

/** "90s", "5m", "2h", or a bare number of seconds: milliseconds. */
export function parseDuration(text: string): number {
  const m = /^\s*([\d.]+)\s*(ms|s|m|min|h)?\s*$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text} (try 90s, 5m, 2h)`);
  const unit = m[2] ?? "s";
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[unit]!;
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      devices: { type: "string" },
      url: { type: "string" },
      "register-demo": { type: "boolean", default: false },
      credentials: { type: "string", default: "./data/simulator-devices.json" },
      rate: { type: "string", default: "1/min" },
      sos: { type: "string", default: "0.5/h" },
      cancel: { type: "string", default: "0.2" },
      "check-in": { type: "string", default: "2/day" },
      falls: { type: "string", default: "0.05/day" },
      offline: { type: "string", default: "0.2/h" },
      "offline-for": { type: "string", default: "60s" },
      abnormal: { type: "string", default: "0.03" },
      speed: { type: "string", default: "1" },
      duration: { type: "string" },
      seed: { type: "string" },
      quiet: { type: "boolean", default: false },
    },
  });
  // Loaded here so that importing this file (tests) does not read the environment.
  const { loadConfig } = await import("../src/config");
  const { loadDemoDevices } = await import("./demo-devices");
  const config = loadConfig();
  const wanted = args.devices === undefined ? undefined : Number(args.devices);
  const fleet = await loadDemoDevices(config, {
    file: args.credentials,
    register: args["register-demo"],
    ...(wanted !== undefined ? { devices: wanted } : {}),
    log: (line) => console.log(line),
  });
  const devices = wanted === undefined ? fleet : fleet.slice(0, wanted);
  if (devices.length === 0) throw new Error("no devices to simulate");
  const url =
    args.url ?? config.MQTT_PUBLIC_URL ?? config.MQTT_URL ?? `mqtt://127.0.0.1:${config.MQTT_PORT}`;
  const time = () => new Date().toISOString().slice(11, 19);
  const sim = startSimulator({
    url,
    topicPrefix: config.MQTT_TOPIC_PREFIX,
    devices,
    rates: {
      telemetry: parseRate(args.rate!),
      sos: parseRate(args.sos!),
      checkIn: parseRate(args["check-in"]!),
      falls: parseRate(args.falls!),
      offline: parseRate(args.offline!),
    },
    cancelShare: Number(args.cancel),
    abnormal: Number(args.abnormal),
    offlineForMs: parseDuration(args["offline-for"]!),
    speed: Number(args.speed),
    ...(args.seed ? { seed: Number(args.seed) } : {}),
    log: args.quiet ? () => undefined : (line) => console.log(`${time()} ${line}`),
  });
  console.log(`${time()} ${devices.length} devices connecting to ${url} (Ctrl-C stops them)`);
  const report = setInterval(() => {
    const s = sim.stats;
    const events = Object.entries(s.events)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    console.log(
      `${time()} ${s.online}/${s.devices} online · ${s.telemetry.acked} telemetry (${s.telemetry.readingsAcked} readings) · ${s.heartbeats} heartbeats${events ? ` · ${events}` : ""}${s.drops ? ` · ${s.drops} drops` : ""}${s.refused ? ` · ${s.refused} refused` : ""}`,
    );
  }, 10_000);
  const stop = async () => {
    clearInterval(report);
    await sim.stop();
    console.log(`${time()} stopped`);
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
  if (args.duration) setTimeout(() => void stop(), parseDuration(args.duration));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: Error) => {
    console.error(error.message);
    process.exit(1);
  });
}
