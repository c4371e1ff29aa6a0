// npm run bench:ingest [-- --devices 1000 --window 4 --warmup 5 --seconds 20 --soak 300
//                          --broker embedded|mosquitto --raw hook|subscriber --abnormal 0.01
//                          --profile FILE --keep]
//
// How fast kincare stores device telemetry, against how fast the same broker passes it on when
// nothing is stored. One run, two phases, the same publishers (a child process, so the load never
// shares kincare's event loop) and the same in-flight window: each device keeps `--window` QoS 1
// messages unacknowledged and sends the next one when a PUBACK comes.
//
//   stored: kincare as it runs in production (embedded aedes broker, group-commit ingest, jobs),
//           on a fresh SQLite file in a temp dir, or a fresh schema on the PostgreSQL that
//           DATABASE_URL names. A PUBACK means committed, so acknowledged messages per second
//           are stored messages per second; the run then checks every one of them is on disk.
//   raw:    the broker without storage: kincare's own broker code (startEmbeddedBroker:
//           credentials, topic check, the publish hook) with a subscriber in the hook that
//           counts and stores nothing (--raw hook, the default); or a bare aedes with an
//           in-process subscriber on the telemetry topics (--raw subscriber).
//
// The devices are pulse oximeters, blood-pressure cuffs, thermometers, hubs, glucose meters and
// scales (about 1.85 readings a message) of one resident in six, with values that follow the day
// and start an abnormal episode in `--abnormal` of messages, so vital rules raise and resolve
// alerts as they would. Both sides' CPU is printed: when the load generator uses a whole core,
// the raw rate is its limit rather than the broker's.
//
// --broker mosquitto: a private Mosquitto (/usr/sbin/mosquitto, its own config, per-device
// passwords and kincare's ACL, on a free port; as the tests start one) instead of the embedded
// broker. Its PUBACK is not a commit, so the devices' window alone would let them run ahead of
// kincare: they publish no more than every device's window beyond what kincare has stored (or the
// raw subscriber has received), which keeps "in flight" the same for both brokers. Rates are
// counted where messages land; p50/p99 are publish-to-receipt times from the stored rows. The
// raw subscriber is kincare's own shape (MQTT_INGEST_CONNECTIONS sessions of one shared group,
// QoS 1) acknowledging at once. The broker runs with max_queued_messages 100000: Mosquitto's
// default of 1000 per session drops QoS 1 messages once a subscriber falls that far behind.
//
// Progress goes to stderr; the last line of stdout is one JSON object.
import { fork } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { createServer } from "node:net";
import { parseArgs } from "node:util";
import { Aedes } from "aedes";
import { sql } from "kysely";
import mqtt from "mqtt";
import { ensureOperator } from "../src/accounts/accounts.service";
import { systemClock } from "../src/clock";
import { loadConfig } from "../src/config";
import type { Db } from "../src/db/database";
import { startEmbeddedBroker } from "../src/devices/broker";
import type { DeviceKind } from "../src/devices/devices.table";
import type { Ingest } from "../src/devices/ingest";
import { mosquittoAclFor } from "../src/devices/mosquitto";
import { createLogger } from "../src/logger";
import { createSystem } from "../src/system";
import { type Mosquitto, startMosquitto } from "../test/helpers/mosquitto";
import { benchDatabase, summariseProfile } from "./bench-common";
import type { FromLoad, LoadDevice, LoadReport, ToLoad } from "./bench-load";
import { registerFleet } from "./fleet";

const { values: args } = parseArgs({
  options: {
    devices: { type: "string", default: "1000" },
    window: { type: "string", default: "4" },
    warmup: { type: "string", default: "5" },
    seconds: { type: "string", default: "20" },
    soak: { type: "string" },
    broker: { type: "string", default: "embedded" },
    raw: { type: "string", default: "hook" },
    abnormal: { type: "string", default: "0.01" },
    profile: { type: "string" },
    "skip-raw": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    "sqlite-pragma": { type: "string", multiple: true, default: [] },
  },
});

const deviceCount = Number(args.devices);
const window = Number(args.window);
const warmupS = Number(args.warmup);
const soakS = args.soak === undefined ? undefined : Number(args.soak);
const measureS = soakS ?? Number(args.seconds);
if (args.broker !== "embedded" && args.broker !== "mosquitto")
  throw new Error(`--broker is embedded or mosquitto, not ${args.broker}`);
const brokerKind: "embedded" | "mosquitto" = args.broker;
const rawMode =
  brokerKind === "mosquitto" ? "subscriber" : args.raw === "subscriber" ? "subscriber" : "hook";
const topicPrefix = "bench/v1";
const telemetryKinds: DeviceKind[] = [
  "pulse_oximeter",
  "blood_pressure_monitor",
  "thermometer",
  "hub",
  "glucose_meter",
  "scale",
];
const timeZones = ["Asia/Shanghai", "Europe/London", "America/New_York", "Australia/Sydney"];

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const mb = (bytes: number) => Math.round((bytes / 1_048_576) * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The load generator: a child process spoken to over IPC. */
function startLoad() {
  const child = fork(new URL("./bench-load.ts", import.meta.url), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    // TypeScript through tsx, and none of this process's flags (a --cpu-prof is for kincare).
    execArgv: ["--import", "tsx"],
  });
  const waiters: { type: FromLoad["type"]; resolve: (m: FromLoad) => void }[] = [];
  let last: Extract<FromLoad, { type: "progress" }> = {
    type: "progress",
    acked: 0,
    inFlight: 0,
    errors: 0,
  };
  child.on("message", (m: FromLoad) => {
    if (m.type === "progress") last = m;
    if (m.type === "failed") throw new Error(`load generator: ${m.message}`);
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
  });
  const ask = <T extends FromLoad["type"]>(message: ToLoad, reply: T) =>
    new Promise<Extract<FromLoad, { type: T }>>((resolve) => {
      waiters.push({ type: reply, resolve: resolve as (m: FromLoad) => void });
      child.send(message);
    });
  return {
    ask,
    progress: () => last,
    send: (message: ToLoad) => child.send(message),
    stop: () => child.disconnect(),
  };
}
type Load = ReturnType<typeof startLoad>;

interface PhaseResult extends LoadReport {
  perS: number;
  peakRssMb: number;
  rssAfterMinuteMb: number | undefined;
  rssEndMb: number;
  totalAcked: number;
  /** The measured window, as ISO-8601 instants. */
  markedAtIso: string;
  endedAtIso: string;
  /** The phase's own counter (readings stored), per second of the measured window. */
  countedPerS: number;
  /** CPU per acknowledged message, in microseconds: kincare's process and the load generator. */
  cpuUsPerMsg: number;
  loadCpuUsPerMsg: number;
  /** Share of one core each used. */
  cpuShare: number;
  loadCpuShare: number;
}

/** Warm-up, then the measured window; samples this process's RSS throughout. */
async function phase(
  load: Load,
  name: string,
  seconds: number,
  hooks: {
    progress?: () => string;
    profile?: Session;
    counter?: () => number;
    /** External broker: messages stored (or received raw) so far; paces the publishers. */
    landed?: () => number;
  } = {},
): Promise<PhaseResult> {
  let credit: NodeJS.Timeout | undefined;
  const landed = hooks.landed;
  const landedAtStart = landed?.() ?? 0;
  if (landed) {
    const allow = () =>
      load.send({ type: "credit", upTo: landed() - landedAtStart + deviceCount * window });
    allow();
    credit = setInterval(allow, 10);
  }
  load.send({ type: "start", tag: `${name}${Date.now().toString(36)}` });
  say(`${name}: warming up for ${warmupS} s`);
  await sleep(warmupS * 1000);
  await hooks.profile?.post("Profiler.start");
  await load.ask({ type: "mark" }, "marked");
  const counted = hooks.counter?.() ?? 0;
  const landedAtMark = landed?.() ?? 0;
  const cpuAtMark = process.cpuUsage();
  const started = Date.now();
  let peak = process.memoryUsage.rss();
  let afterMinute: number | undefined;
  let lastAcked = landed ? landedAtMark : 0;
  let lastAt = started;
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) peak = rss;
    if (afterMinute === undefined && Date.now() - started >= 60_000) afterMinute = rss;
  }, 250);
  const reporter = setInterval(() => {
    const p = load.progress();
    const now = Date.now();
    const done = landed ? landed() : p.acked;
    say(
      `${name}: ${Math.round((now - started) / 1000)} s, ${Math.round(((done - lastAcked) * 1000) / (now - lastAt))}/s, in flight ${p.inFlight}, rss ${mb(process.memoryUsage.rss())} MB${hooks.progress ? `, ${hooks.progress()}` : ""}`,
    );
    lastAcked = done;
    lastAt = now;
  }, 5_000);
  await sleep(seconds * 1000);
  const report = await load.ask({ type: "report" }, "report");
  const ended = Date.now();
  const landedPerS = landed
    ? Math.round(((landed() - landedAtMark) * 1000) / (Date.now() - started))
    : undefined;
  const countedPerS = ((hooks.counter?.() ?? 0) - counted) / (report.elapsedMs / 1000);
  const cpu = process.cpuUsage(cpuAtMark);
  // Share of one core each side used: 1.0 means that side was the limit.
  const cpuMs = (cpu.user + cpu.system) / 1000;
  say(
    `${name}: kincare used ${(cpuMs / report.elapsedMs).toFixed(2)} of a core (${Math.round((cpuMs * 1000) / report.acked)} µs a message), the load generator ${(report.cpuMs / report.elapsedMs).toFixed(2)} (${Math.round((report.cpuMs * 1000) / report.acked)} µs a message)`,
  );
  clearInterval(sampler);
  clearInterval(reporter);
  const rssEnd = process.memoryUsage.rss();
  say(`${name}: draining what is still in flight`);
  if (credit) clearInterval(credit);
  const halted = await load.ask({ type: "halt" }, "halted");
  return {
    ...report,
    perS: landedPerS ?? Math.round((report.acked * 1000) / report.elapsedMs),
    peakRssMb: mb(Math.max(peak, rssEnd)),
    rssAfterMinuteMb: afterMinute === undefined ? undefined : mb(afterMinute),
    rssEndMb: mb(rssEnd),
    totalAcked: halted.acked,
    markedAtIso: new Date(started).toISOString(),
    endedAtIso: new Date(ended).toISOString(),
    countedPerS: Math.round(countedPerS),
    cpuUsPerMsg: Math.round((cpuMs * 1000) / report.acked),
    loadCpuUsPerMsg: Math.round((report.cpuMs * 1000) / report.acked),
    cpuShare: Math.round((cpuMs / report.elapsedMs) * 100) / 100,
    loadCpuShare: Math.round((report.cpuMs / report.elapsedMs) * 100) / 100,
  };
}

function freshDatabase() {
  const url = process.env.DATABASE_URL;
  return benchDatabase("bench", url && /^postgres(ql)?:\/\//i.test(url) ? url : undefined);
}

async function main() {
  const target = await freshDatabase();
  dropDatabase = args.keep ? undefined : target.drop;
  // kincare's own user on a private Mosquitto; the devices are added once registered.
  const service = { username: "kincare", password: `bench-${Math.random().toString(36).slice(2)}` };
  if (brokerKind === "mosquitto") {
    mosquitto = await startMosquitto({
      users: [service],
      acl: mosquittoAclFor(topicPrefix, service.username),
    });
    say(`broker: a private mosquitto on ${mosquitto.url} (max_queued_messages 100000)`);
  }
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: target.url,
    NODE_ENV: "production",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    PUBLIC_URL: "http://127.0.0.1:3000",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: "0",
    MQTT_TOPIC_PREFIX: topicPrefix,
    // The embedded broker unless --broker mosquitto: never the MQTT_URL of the environment.
    MQTT_URL: mosquitto?.url ?? "",
    MQTT_USERNAME: mosquitto ? service.username : "",
    MQTT_PASSWORD: mosquitto ? service.password : "",
    MQTT_CLIENT_ID: `kincare-bench-${process.pid}`,
    MQTT_SHARED_GROUP: "",
    BOOTSTRAP_OPERATOR_EMAIL: "",
    BOOTSTRAP_OPERATOR_PASSWORD: "",
  });
  const logger = createLogger(config.LOG_LEVEL, process.stderr);
  say(`database: ${target.dialect} (${target.where})`);
  const system = await createSystem(config, {
    clock: systemClock,
    logger,
    database: target.open(config.DATABASE_POOL_SIZE),
  });
  for (const pragma of args["sqlite-pragma"] ?? []) {
    if (target.dialect !== "sqlite") break;
    // For experiments: kincare has one SQLite connection, so this applies to all of it.
    await sql.raw(`pragma ${pragma}`).execute(system.db);
    say(`pragma ${pragma}`);
  }
  const setupStarted = Date.now();
  const { userId } = await ensureOperator(system.db, new Date(), {
    email: "bench-operator@kincare.local",
    password: `bench-${Math.random().toString(36).slice(2)}-${Date.now()}`,
  });
  const devices: LoadDevice[] = (
    await registerFleet(system.db, system.link, userId, {
      residents: Math.ceil(deviceCount / telemetryKinds.length),
      devices: deviceCount,
      kinds: telemetryKinds,
      timeZones,
      serialPrefix: "BENCH",
    })
  ).map((d) => ({ id: d.id, secret: d.secret, kind: d.kind, timeZone: d.timeZone }));
  say(`registered ${devices.length} devices in ${Date.now() - setupStarted} ms`);
  await mosquitto?.addUsers(devices.map((d) => ({ username: d.id, password: d.secret })));
  await system.start();
  const brokerUrl = mosquitto?.url ?? `mqtt://127.0.0.1:${system.broker!.port}`;

  const load = startLoad();
  const connect = async (url: string) => {
    const { ms } = await load.ask(
      {
        type: "connect",
        url,
        topicPrefix,
        devices,
        window,
        abnormal: Number(args.abnormal),
      },
      "connected",
    );
    say(`${devices.length} devices connected to ${url} in ${ms} ms (window ${window})`);
  };

  // --- stored: kincare as it runs ---
  await connect(brokerUrl);
  const profiler = args.profile ? new Session() : undefined;
  profiler?.connect();
  await profiler?.post("Profiler.enable");
  const ingest = system.ingest;
  // On an external broker: count the device messages kincare has committed.
  let committed = 0;
  if (mosquitto) {
    const submit = ingest.submit.bind(ingest);
    ingest.submit = (topic, payload) =>
      submit(topic, payload).then(() => {
        if (topic.endsWith("/telemetry")) committed++;
      });
  }
  let lastBatches = 0;
  let lastStored = 0;
  const stored = await phase(load, "stored", measureS, {
    ...(profiler ? { profile: profiler } : {}),
    counter: () => ingest.stats.stored,
    ...(mosquitto ? { landed: () => committed } : {}),
    progress: () => {
      const batches = ingest.stats.batches - lastBatches;
      const readings = ingest.stats.stored - lastStored;
      lastBatches = ingest.stats.batches;
      lastStored = ingest.stats.stored;
      return `${batches} commits, ${batches ? Math.round(readings / batches) : 0} readings each`;
    },
  });
  if (profiler) {
    const { profile } = await profiler.post("Profiler.stop");
    writeFileSync(args.profile!, JSON.stringify(profile));
    say(`CPU profile of the measured window written to ${args.profile}; self time, top 30:`);
    for (const line of summariseProfile(profile)) say(line);
    profiler.disconnect();
  }
  if (mosquitto) {
    // What the broker acknowledged is still on its way to kincare: wait until it is all stored.
    const until = Date.now() + 120_000;
    while (committed < stored.totalAcked) {
      if (Date.now() > until)
        throw new Error(`kincare stored ${committed} of ${stored.totalAcked} within 120 s`);
      await sleep(100);
    }
    const latency = await receiptLatency(system.db, stored.markedAtIso, stored.endedAtIso);
    stored.p50Ms = latency.p50;
    stored.p99Ms = latency.p99;
    stored.maxMs = latency.max;
  }
  await load.ask({ type: "disconnect" }, "disconnected");
  await ingest.drain();

  // Every acknowledged message must be on disk, once.
  const messages = await system.db
    .selectFrom(
      system.db
        .selectFrom("readings")
        .select(["device_id", "msg_id"])
        .where("msg_id", "like", "stored%")
        .groupBy(["device_id", "msg_id"])
        .as("m"),
    )
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  const quarantined = Object.values(ingest.stats.quarantined).reduce((a, b) => a + b, 0);
  say(
    `stored: ${stored.perS}/s, p50 ${stored.p50Ms} ms, p99 ${stored.p99Ms} ms, max ${Math.round(stored.maxMs)} ms; ${stored.totalAcked} acknowledged, ${Number(messages.n)} messages on disk, ${ingest.stats.stored} readings, ${quarantined} quarantined, ${ingest.stats.failedBatches} failed commits`,
  );
  if (Number(messages.n) < stored.totalAcked)
    throw new Error("fewer messages on disk than were acknowledged: ingest lost data");
  const secrets = new Map(devices.map((d) => [d.id, d.secret]));
  await system.stop({ endMqttSessions: true });
  dropDatabase = undefined;
  if (!args.keep) await target.drop();
  else say(`kept the database: ${target.where}`);

  // --- raw: the same broker, nothing stored ---
  let raw: PhaseResult | undefined;
  if (!args["skip-raw"]) {
    let received = 0;
    const authenticate = async (id: string, secret: string) => secrets.get(id) === secret;
    let closeRaw: () => Promise<void>;
    let rawUrl: string;
    if (mosquitto) {
      // kincare's shape on the same broker: shared telemetry sessions at QoS 1, acknowledging
      // each message at once instead of after a commit.
      const subscribers = await Promise.all(
        Array.from({ length: config.MQTT_INGEST_CONNECTIONS }, async (_, i) => {
          const client = await mqtt.connectAsync(mosquitto!.url, {
            ...service,
            clientId: `kincare-bench-raw-${process.pid}-${i + 1}`,
            clean: true,
            protocolVersion: 4,
            reconnectPeriod: 0,
          });
          client.handleMessage = (_packet, callback) => {
            received++;
            callback();
          };
          await client.subscribeAsync(`$share/raw/${topicPrefix}/devices/+/telemetry`, { qos: 1 });
          return client;
        }),
      );
      rawUrl = mosquitto.url;
      closeRaw = async () => {
        await Promise.all(subscribers.map((c) => c.endAsync()));
      };
    } else if (rawMode === "hook") {
      // kincare's own broker code; what the hook hands on is counted and dropped.
      const passThrough = {
        authenticate,
        submit: () => {
          received++;
          return Promise.resolve();
        },
      } as Pick<Ingest, "authenticate" | "submit">;
      const broker = await startEmbeddedBroker({
        host: "127.0.0.1",
        port: 0,
        topicPrefix,
        ingest: passThrough as Ingest,
        logger,
      });
      rawUrl = `mqtt://127.0.0.1:${broker.port}`;
      closeRaw = broker.close;
    } else {
      const aedes = await Aedes.createBroker({
        concurrency: 1000,
        authenticate: (_client, username, password, done) =>
          void authenticate(username ?? "", password?.toString() ?? "").then((ok) =>
            done(null, ok),
          ),
      });
      await new Promise<void>((resolve) =>
        aedes.subscribe(
          `${topicPrefix}/devices/+/telemetry`,
          (_packet, cb) => {
            received++;
            cb();
          },
          resolve,
        ),
      );
      const server = createServer(aedes.handle);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const address = server.address();
      rawUrl = `mqtt://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
      closeRaw = async () => {
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        await new Promise<void>((resolve) => server.close(() => resolve()));
      };
    }
    await connect(rawUrl);
    raw = await phase(load, `raw-${rawMode}`, Math.min(measureS, Number(args.seconds)), {
      ...(mosquitto ? { landed: () => received } : {}),
    });
    await load.ask({ type: "disconnect" }, "disconnected");
    await closeRaw();
    say(
      `raw (${rawMode}): ${raw.perS}/s, p50 ${raw.p50Ms} ms, p99 ${raw.p99Ms} ms; the subscriber saw ${received}`,
    );
  }
  load.stop();

  const result: Record<string, unknown> = {
    bench: "ingest",
    broker: brokerKind,
    db: target.dialect,
    stored_per_s: stored.perS,
    raw_per_s: raw?.perS ?? null,
    ratio: raw ? Math.round((stored.perS / raw.perS) * 1000) / 1000 : null,
    p50_ms: stored.p50Ms,
    p99_ms: stored.p99Ms,
    peak_rss_mb: stored.peakRssMb,
  };
  if (soakS !== undefined)
    result.rss_growth_mb =
      stored.rssAfterMinuteMb === undefined
        ? null
        : Math.round((stored.rssEndMb - stored.rssAfterMinuteMb) * 10) / 10;
  Object.assign(result, {
    devices: devices.length,
    window,
    seconds: measureS,
    raw_mode: rawMode,
    ...(mosquitto ? { mqtt_ingest_connections: config.MQTT_INGEST_CONNECTIONS } : {}),
    readings_per_s: stored.countedPerS,
    cpu_us_per_msg: stored.cpuUsPerMsg,
    ...(raw
      ? {
          raw_cpu_us_per_msg: raw.cpuUsPerMsg,
          raw_limited_by: raw.loadCpuShare >= raw.cpuShare ? "load generator" : "broker",
        }
      : {}),
  });
  console.log(JSON.stringify(result));
}

/**
 * Publish-to-receipt times of the messages kincare received in the measured window, from the
 * stored rows (device time to receipt time; both clocks are this machine's).
 */
async function receiptLatency(db: Db, from: string, to: string) {
  const rows = await db
    .selectFrom("readings")
    .select((eb) => [
      eb.fn.min("measured_at").as("measured"),
      eb.fn.min("received_at").as("received"),
    ])
    .where("msg_id", "like", "stored%")
    .where("received_at", ">=", from)
    .where("received_at", "<=", to)
    .groupBy(["device_id", "msg_id"])
    .execute();
  const ms = rows
    .map((r) => Date.parse(String(r.received)) - Date.parse(String(r.measured)))
    .sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.ceil(ms.length * q) - 1)] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: ms.at(-1) ?? 0 };
}

/** Set while the run's database exists, so that a failed run does not leave it behind. */
let dropDatabase: (() => Promise<void>) | undefined;
/** The private broker of --broker mosquitto, stopped however the run ends. */
let mosquitto: Mosquitto | undefined;

main().then(
  async () => {
    await mosquitto?.stop();
    process.exit(0);
  },
  async (error) => {
    console.error(error);
    await dropDatabase?.().catch(() => undefined);
    await mosquitto?.stop().catch(() => undefined);
    process.exit(1);
  },
);
