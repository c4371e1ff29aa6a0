// npm run bench:sos [-- --db sqlite|postgres --residents 300 --flood-residents 50 --devices 1000
//                      --rate 2500 --window 4 --flood-window 16 --duration 20 --flood-seconds 20
//                      --wait-minutes 0.25 --timeout 30 --abnormal 0.01 --profile FILE --keep]
//
// How fast an SOS press reaches a person while kincare is busy storing telemetry. kincare runs
// in this process as it does in production (embedded aedes broker, group-commit ingest, durable
// jobs, the real twilio SDK and web-push library), on a fresh SQLite file in a temp dir or a fresh
// schema on PostgreSQL (--db postgres: DATABASE_URL if it is a postgres:// URL, else
// postgres://root@127.0.0.1:5432/test). Its ways out are the fake Twilio REST API and the local
// HTTPS push service of test/helpers, both on 127.0.0.1, recording when each request arrived.
// The devices are a child process (devices/bench-sos-load.ts), so they never share kincare's
// event loop: telemetry devices at QoS 1, and one SOS pendant per resident.
//
// Each SOS resident has a family member (primary in the circle, confirmed phone, one push
// subscription) and a neighbour's number; the escalation policy's first tier is the family member
// by push and SMS, waiting --wait-minutes (0.25, the least a policy allows: 15 s), the second
// tier the neighbour by SMS, no repeats. Nobody acknowledges, so every alert runs both steps.
//
//   background: telemetry at --rate messages a second (token bucket over the devices, each with at
//     most --window unacknowledged); one SOS press per resident spread over --duration seconds;
//     the phase lasts until the last press's step 1 has fired. Measured: publish -> first SMS
//     request for the family member's phone at the fake Twilio, and -> first push to their
//     subscription; background_per_s is the telemetry actually acknowledged a second.
//   flood: every telemetry device keeps --flood-window messages in flight (more than kincare
//     stores), --flood-residents other residents press in the middle half of --flood-seconds;
//     flood_sos_p99_ms is publish -> first SMS. Then back to the background rate until their
//     step 1 has fired.
//
// lost: presses with no SMS or no push within --timeout seconds. duplicated: alert messages beyond
// the first per recipient and channel (each resident presses once, so each alert has one first-tier
// SMS and push, and one step-1 SMS). step_error_p99_ms: how late escalation steps started against
// their due time, from the database: the `jobs` row of each step (dedupe key alert-step:{id}:{n})
// holds due_at, and the alert's timeline entry that step writes first ("notifying" for step 0,
// "escalated_to_tier" for step 1) holds when it ran. Step 0 is due when the alert is raised, so
// its lateness is the scheduler's pick-up time; step 1 is due --wait-minutes after step 0 ran.
// Both steps of both phases are in step_error_*; per step and phase in the extra keys.
//
// Progress goes to stderr; the last line of stdout is one JSON object.
import { fork } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { ensureOperator } from "../src/accounts/accounts.service";
import { hashPassword } from "../src/accounts/passwords";
import { iso, systemClock } from "../src/clock";
import { loadConfig } from "../src/config";
import type { DeviceKind } from "../src/devices/devices.table";
import type { EscalationPolicy } from "../src/escalation/policy";
import { newId } from "../src/ids";
import { createLogger } from "../src/logger";
import { createResident } from "../src/residents/residents.service";
import { createSystem, type System } from "../src/system";
import { type FakePush, startFakePush } from "../test/helpers/fake-push";
import { type FakeTwilio, startFakeTwilio } from "../test/helpers/fake-twilio";
import { benchDatabase, summariseProfile } from "./bench-common";
import type { FromSosLoad, Press, SosLoadDevice, ToSosLoad } from "./bench-sos-load";
import { actorOf, registerFleet, registerOne } from "./fleet";

const { values: args } = parseArgs({
  options: {
    db: { type: "string", default: "sqlite" },
    residents: { type: "string", default: "300" },
    "flood-residents": { type: "string", default: "50" },
    devices: { type: "string", default: "1000" },
    rate: { type: "string", default: "2500" },
    window: { type: "string", default: "4" },
    "flood-window": { type: "string", default: "16" },
    duration: { type: "string", default: "20" },
    "flood-seconds": { type: "string", default: "20" },
    "wait-minutes": { type: "string", default: "0.25" },
    timeout: { type: "string", default: "30" },
    warmup: { type: "string", default: "3" },
    abnormal: { type: "string", default: "0.001" },
    profile: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});

const dialect = args.db === "postgres" ? "postgres" : "sqlite";
if (args.db !== "sqlite" && args.db !== "postgres") throw new Error("--db sqlite|postgres");
const residentCount = Number(args.residents);
const floodResidentCount = Number(args["flood-residents"]);
const deviceCount = Number(args.devices);
const ratePerS = Number(args.rate);
const window = Number(args.window);
const floodWindow = Number(args["flood-window"]);
const durationS = Number(args.duration);
const floodS = Number(args["flood-seconds"]);
const waitMinutes = Number(args["wait-minutes"]);
const timeoutMs = Number(args.timeout) * 1000;
const warmupS = Number(args.warmup);
const abnormal = Number(args.abnormal);
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

const say = (line: string) => process.stderr.write(`[bench:sos] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Epoch milliseconds with sub-millisecond precision, comparable across processes. */
const epochOf = (performanceNow: number) => performance.timeOrigin + performanceNow;
const load1 = () => loadavg()[0]!.toFixed(2);

// ---- the device side -------------------------------------------------------------------------

function startLoad(onMessage: (m: FromSosLoad) => void) {
  const child = fork(new URL("./bench-sos-load.ts", import.meta.url), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    // TypeScript through tsx, and none of this process's flags (a --cpu-prof is for kincare).
    execArgv: ["--import", "tsx"],
  });
  const waiters: { type: FromSosLoad["type"]; resolve: (m: FromSosLoad) => void }[] = [];
  let last = { acked: 0, inFlight: 0, errors: 0 };
  let failure: Error | undefined;
  child.on("message", (m: FromSosLoad) => {
    if (m.type === "progress") last = m;
    if (m.type === "failed") failure = new Error(`device side: ${m.message}`);
    onMessage(m);
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
  });
  child.on("exit", (code) => {
    if (code) failure = new Error(`device side exited with ${code}`);
  });
  const ask = <T extends FromSosLoad["type"]>(message: ToSosLoad, reply: T) =>
    new Promise<Extract<FromSosLoad, { type: T }>>((resolve) => {
      waiters.push({ type: reply, resolve: resolve as (m: FromSosLoad) => void });
      child.send(message);
    });
  return {
    ask,
    send: (message: ToSosLoad) => child.send(message),
    progress: () => last,
    check() {
      if (failure) throw failure;
    },
    stop: () => {
      if (child.connected) child.disconnect();
      if (child.exitCode === null) child.kill();
    },
  };
}
type Load = ReturnType<typeof startLoad>;

// ---- the database ----------------------------------------------------------------------------

function freshDatabase() {
  if (dialect !== "postgres") return benchDatabase("bench_sos");
  const env = process.env.DATABASE_URL;
  return benchDatabase(
    "bench_sos",
    env && /^postgres(ql)?:\/\//i.test(env) ? env : "postgres://root@127.0.0.1:5432/test",
  );
}

// ---- the people ------------------------------------------------------------------------------

interface Household {
  index: number;
  phase: "background" | "flood";
  residentId: string;
  familyUserId: string;
  familyPhone: string;
  neighbourPhone: string;
  endpoint: string;
  device: SosLoadDevice;
  msgId: string;
  pressedAt?: number;
  pubackAt?: number;
  pressError?: string | null;
  sosReceivedAt?: number;
}

/** Valid mainland China mobile numbers, distinct per household: 139... family, 138... neighbour. */
const familyPhone = (i: number) => `+86139${String(10_000_000 + i).slice(-8)}`;
const neighbourPhone = (i: number) => `+86138${String(10_000_000 + i).slice(-8)}`;

/**
 * Residents with an SOS pendant, a reachable family member and a neighbour. The resident and the
 * device go through kincare's services; the person's account, confirmed numbers, subscription and
 * policy are written directly (what the confirmation and subscription endpoints would leave).
 */
async function households(
  system: System,
  push: FakePush,
  operatorId: string,
  count: number,
  phase: Household["phase"],
  offset: number,
): Promise<Household[]> {
  const db = system.db;
  const actor = await actorOf(db, operatorId, "bench");
  const passwordHash = await hashPassword(`bench-${Math.random().toString(36).slice(2)}`);
  const list: Household[] = [];
  for (let n = 0; n < count; n++) {
    const i = offset + n;
    const timeZone = timeZones[i % timeZones.length]!;
    const now = new Date();
    const at = iso(now);
    const resident = await createResident(
      db,
      { now, actor, requestId: null },
      {
        fullName: `SOS Bench Resident ${i + 1}`,
        dateOfBirth: "1939-03-02",
        address: {
          line1: `${i + 1} Bench Lane`,
          locality: "Benchmark",
          country: "GB",
          latitude: 51.5,
          longitude: -0.12,
        },
        timeZone,
        language: "en",
      },
    );
    const userId = newId();
    const sub = await push.subscribe();
    const policy: EscalationPolicy = {
      tiers: [
        {
          recipients: [{ kind: "member", userId }],
          channels: ["push", "sms"],
          waitMinutes,
        },
        {
          recipients: [{ kind: "phone", phone: neighbourPhone(i), name: `Neighbour ${i + 1}` }],
          channels: ["sms"],
          waitMinutes: 5,
        },
      ],
      repeatEveryMinutes: 5,
      repeatLimit: 0,
    };
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto("users")
        .values({
          id: userId,
          email: null,
          phone: familyPhone(i),
          display_name: `Family ${i + 1}`,
          password_hash: passwordHash,
          language: "en",
          time_zone: timeZone,
          quiet_hours_start: null,
          quiet_hours_end: null,
          channels: JSON.stringify(["push", "sms"]),
          next_login_at: null,
          locked_until: null,
          disabled_at: null,
          created_at: at,
          updated_at: at,
        })
        .execute();
      await trx
        .insertInto("user_roles")
        .values({ user_id: userId, role: "family", granted_at: at, granted_by: null })
        .execute();
      await trx
        .insertInto("circle_members")
        .values({
          resident_id: resident.id,
          user_id: userId,
          relationship: "daughter",
          level: "primary",
          added_by: operatorId,
          created_at: at,
        })
        .execute();
      await trx
        .insertInto("phone_numbers")
        .values(
          [familyPhone(i), neighbourPhone(i)].map((phone) => ({
            phone,
            confirmed_at: at,
            opted_out_at: null,
            code_hash: null,
            code_expires_at: null,
            invited_at: null,
            language: null,
            created_at: at,
            updated_at: at,
          })),
        )
        .execute();
      await trx
        .insertInto("push_subscriptions")
        .values({
          id: newId(),
          user_id: userId,
          endpoint: sub.endpoint,
          p256dh: sub.keys.p256dh,
          auth: sub.keys.auth,
          user_agent: "bench-sos",
          created_at: at,
          last_success_at: null,
        })
        .execute();
      await trx
        .insertInto("escalation_policies")
        .values({
          resident_id: resident.id,
          policy: JSON.stringify(policy),
          updated_at: at,
          updated_by: operatorId,
        })
        .execute();
    });
    const device = await registerOne(
      db,
      system.link,
      actor,
      { id: resident.id, timeZone },
      "sos_pendant",
      `SOSBENCH-${i + 1}`,
      300,
    );
    list.push({
      index: i,
      phase,
      residentId: resident.id,
      familyUserId: userId,
      familyPhone: familyPhone(i),
      neighbourPhone: neighbourPhone(i),
      endpoint: sub.endpoint,
      device: { id: device.id, secret: device.secret, kind: device.kind, timeZone },
      msgId: `sos-${phase}-${i + 1}`,
    });
  }
  return list;
}

// ---- measuring -------------------------------------------------------------------------------

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q) - 1))]!;
}
const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);

function summary(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: round(quantile(s, 0.5)),
    p95: round(quantile(s, 0.95)),
    p99: round(quantile(s, 0.99)),
    max: round(s.at(-1) ?? null),
  };
}

/** First arrival (epoch ms) and count per key. */
function arrivals<T>(items: T[], key: (t: T) => string, at: (t: T) => number) {
  const map = new Map<string, { first: number; count: number }>();
  for (const item of items) {
    const k = key(item);
    const t = at(item);
    const e = map.get(k);
    if (!e) map.set(k, { first: t, count: 1 });
    else {
      e.count++;
      if (t < e.first) e.first = t;
    }
  }
  return map;
}

interface Outcome {
  sms: number[];
  push: number[];
  deviceAck: number[];
  lostSms: number;
  lostPush: number;
  lostStep1: number;
  duplicated: number;
}

function outcome(list: Household[], twilio: FakeTwilio, push: FakePush): Outcome {
  const sms = arrivals(
    twilio.messages,
    (m) => m.to,
    (m) => epochOf(m.receivedAt),
  );
  const pushes = arrivals(
    push.received,
    (p) => p.endpoint,
    (p) => epochOf(p.receivedAt),
  );
  const o: Outcome = {
    sms: [],
    push: [],
    deviceAck: [],
    lostSms: 0,
    lostPush: 0,
    lostStep1: 0,
    duplicated: 0,
  };
  for (const h of list) {
    if (h.pressedAt === undefined) {
      o.lostSms++;
      o.lostPush++;
      continue;
    }
    const s = sms.get(h.familyPhone);
    const p = pushes.get(h.endpoint);
    const n = sms.get(h.neighbourPhone);
    if (s && s.first - h.pressedAt <= timeoutMs) o.sms.push(s.first - h.pressedAt);
    else o.lostSms++;
    if (p && p.first - h.pressedAt <= timeoutMs) o.push.push(p.first - h.pressedAt);
    else o.lostPush++;
    if (!n) o.lostStep1++;
    if (h.sosReceivedAt !== undefined) o.deviceAck.push(h.sosReceivedAt - h.pressedAt);
    o.duplicated += Math.max(0, (s?.count ?? 0) - 1);
    o.duplicated += Math.max(0, (p?.count ?? 0) - 1);
    o.duplicated += Math.max(0, (n?.count ?? 0) - 1);
  }
  return o;
}

/** Waits until every household of the list has its SMS, push and (if asked) step-1 SMS. */
async function settle(
  list: Household[],
  twilio: FakeTwilio,
  push: FakePush,
  load: Load,
  opts: { step1: boolean; deadline: number },
) {
  for (;;) {
    load.check();
    const phones = new Set(twilio.messages.map((m) => m.to));
    const endpoints = new Set(push.received.map((p) => p.endpoint));
    const missing = list.filter(
      (h) =>
        !phones.has(h.familyPhone) ||
        !endpoints.has(h.endpoint) ||
        (opts.step1 && !phones.has(h.neighbourPhone)),
    ).length;
    if (missing === 0) return 0;
    if (Date.now() >= opts.deadline) return missing;
    await sleep(250);
  }
}

/**
 * Where an SOS's time went, per press (epoch ms; kincare's timestamps are from the same clock):
 * publish -> the ingest batch that stored it began (timeline "raised" is that batch's clock) ->
 * step 0 began (timeline "notifying") -> step 0's job finished -> the first SMS reached Twilio.
 */
async function path(system: System, list: Household[], twilio: FakeTwilio) {
  const byResident = new Map(list.map((h) => [h.residentId, h]));
  const alerts = await system.db
    .selectFrom("alerts")
    .select(["id", "resident_id", "opened_at"])
    .where("kind", "=", "sos")
    .where(
      "resident_id",
      "in",
      list.map((h) => h.residentId),
    )
    .execute();
  const jobs = await system.db
    .selectFrom("jobs")
    .select(["dedupe_key", "finished_at"])
    .where(
      "dedupe_key",
      "in",
      alerts.map((a) => `alert-step:${a.id}:0`),
    )
    .where("finished_at", "is not", null)
    .orderBy("finished_at")
    .execute();
  const finishedOf = new Map<string, string>();
  for (const j of jobs)
    if (!finishedOf.has(j.dedupe_key!)) finishedOf.set(j.dedupe_key!, j.finished_at!);
  const rows = alerts.map((a) => ({ ...a, finished_at: finishedOf.get(`alert-step:${a.id}:0`) }));
  const starts = await system.db
    .selectFrom("alert_timeline")
    .select(["alert_id", "at"])
    .where("type", "=", "notifying")
    .where(
      "alert_id",
      "in",
      rows.map((r) => r.id),
    )
    .execute();
  const startOf = new Map<string, number>();
  for (const s of starts) {
    const t = Date.parse(s.at);
    if (!startOf.has(s.alert_id) || t < startOf.get(s.alert_id)!) startOf.set(s.alert_id, t);
  }
  const sms = arrivals(
    twilio.messages,
    (m) => m.to,
    (m) => epochOf(m.receivedAt),
  );
  const seg: Record<string, number[]> = {
    "publish->stored": [],
    "stored->step0": [],
    "step0 run": [],
    "step0->sms": [],
    "device sos_received": [],
  };
  const done = new Set<string>();
  for (const r of rows) {
    const h = byResident.get(r.resident_id)!;
    if (done.has(r.id) || h.pressedAt === undefined || !r.finished_at) continue;
    done.add(r.id);
    const stored = Date.parse(r.opened_at);
    const start = startOf.get(r.id);
    const finished = Date.parse(r.finished_at);
    const first = sms.get(h.familyPhone)?.first;
    seg["publish->stored"]!.push(stored - h.pressedAt);
    if (start !== undefined) {
      seg["stored->step0"]!.push(start - stored);
      seg["step0 run"]!.push(finished - start);
    }
    if (first !== undefined) seg["step0->sms"]!.push(first - finished);
    if (h.sosReceivedAt !== undefined)
      seg["device sos_received"]!.push(h.sosReceivedAt - h.pressedAt);
  }
  return Object.fromEntries(
    Object.entries(seg).map(([k, v]) => {
      const x = summary(v);
      return [k, { p50: x.p50, p99: x.p99 }];
    }),
  );
}

/** Escalation steps' lateness: when each step's run began (its first timeline entry) - due_at. */
async function stepErrors(system: System, list: Household[]) {
  const byResident = new Map(list.map((h) => [h.residentId, h]));
  const alerts = await system.db
    .selectFrom("alerts")
    .select(["id", "resident_id"])
    .where("kind", "=", "sos")
    .where(
      "resident_id",
      "in",
      list.map((h) => h.residentId),
    )
    .execute();
  const ids = alerts.map((a) => a.id);
  const phaseOf = new Map(alerts.map((a) => [a.id, byResident.get(a.resident_id)!.phase]));
  const jobs = await system.db
    .selectFrom("jobs")
    .select(["dedupe_key", "due_at"])
    .where(
      "dedupe_key",
      "in",
      ids.flatMap((id) => [`alert-step:${id}:0`, `alert-step:${id}:1`]),
    )
    .execute();
  const due = new Map(jobs.map((j) => [j.dedupe_key!, Date.parse(j.due_at)]));
  const timeline = await system.db
    .selectFrom("alert_timeline")
    .select(["alert_id", "type", "at"])
    .where("alert_id", "in", ids)
    .where("type", "in", ["notifying", "escalated_to_tier"])
    .execute();
  const errors: Record<string, number[]> = {
    "background:0": [],
    "background:1": [],
    "flood:0": [],
    "flood:1": [],
  };
  const seen = new Set<string>();
  for (const t of timeline) {
    const step = t.type === "notifying" ? 0 : 1;
    const key = `alert-step:${t.alert_id}:${step}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const dueAt = due.get(key);
    if (dueAt === undefined) continue;
    errors[`${phaseOf.get(t.alert_id)}:${step}`]!.push(Date.parse(t.at) - dueAt);
  }
  return { errors, alerts: alerts.length, duplicatesAlerts: alerts.length - byResident.size };
}

// ---- the run ---------------------------------------------------------------------------------

/** Presses of the list spread evenly (shuffled, with jitter) from `fromMs` over `spanMs`. */
function schedule(list: Household[], fromMs: number, spanMs: number): Press[] {
  const order = [...list].sort(() => Math.random() - 0.5);
  const gap = spanMs / Math.max(1, order.length);
  return order.map((h, k) => ({
    deviceId: h.device.id,
    msgId: h.msgId,
    offsetMs: Math.round(fromMs + k * gap + Math.random() * gap * 0.8),
  }));
}

async function count(load: Load) {
  return load.ask({ type: "count" }, "count");
}

async function main() {
  const loadAtStart = load1();
  const target = await freshDatabase();
  cleanups.push(async () => {
    if (args.keep) say(`kept the database: ${target.where}`);
    else await target.drop();
  });
  const twilio = await startFakeTwilio();
  cleanups.push(() => twilio.close());
  const push = await startFakePush();
  cleanups.push(() => push.close());

  const config = loadConfig({
    ...process.env,
    DATABASE_URL: target.url,
    NODE_ENV: "production",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    PUBLIC_URL: "http://127.0.0.1:3000",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: "0",
    MQTT_TOPIC_PREFIX: topicPrefix,
    MQTT_URL: "",
    BOOTSTRAP_OPERATOR_EMAIL: "",
    BOOTSTRAP_OPERATOR_PASSWORD: "",
    TWILIO_ACCOUNT_SID: twilio.accountSid,
    TWILIO_AUTH_TOKEN: twilio.authToken,
    TWILIO_FROM: "+15005550006",
    TWILIO_API_URL: twilio.url,
    VAPID_SUBJECT: "mailto:bench@kincare.local",
  });
  const logger = createLogger(config.LOG_LEVEL, process.stderr);
  say(
    `database: ${dialect} (${target.where}); JOBS_POLL_MS ${config.JOBS_POLL_MS}, JOBS_CONCURRENCY ${config.JOBS_CONCURRENCY}; load average ${loadAtStart}`,
  );
  const system = await createSystem(config, {
    clock: systemClock,
    logger,
    database: target.open(config.DATABASE_POOL_SIZE),
    pushAgent: push.agent,
  });
  cleanups.push(() => system.stop());
  const jobRuns = timeJobs(system);
  await system.start();
  const brokerUrl = `mqtt://127.0.0.1:${system.broker!.port}`;

  const setupStarted = Date.now();
  const { userId: operatorId } = await ensureOperator(system.db, new Date(), {
    email: "bench-sos-operator@kincare.local",
    password: `bench-${Math.random().toString(36).slice(2)}-${Date.now()}`,
  });
  const background = await households(system, push, operatorId, residentCount, "background", 0);
  const flood = await households(
    system,
    push,
    operatorId,
    floodResidentCount,
    "flood",
    residentCount,
  );
  const everyone = [...background, ...flood];
  const byDevice = new Map(everyone.map((h) => [h.device.id, h]));
  const telemetry: SosLoadDevice[] = (
    await registerFleet(system.db, system.link, operatorId, {
      residents: Math.ceil(deviceCount / telemetryKinds.length),
      devices: deviceCount,
      kinds: telemetryKinds,
      timeZones,
      serialPrefix: "SOSBENCH-T",
    })
  ).map((d) => ({ id: d.id, secret: d.secret, kind: d.kind, timeZone: d.timeZone }));
  say(
    `set up ${everyone.length} SOS households and ${telemetry.length} telemetry devices in ${Date.now() - setupStarted} ms`,
  );

  const load = startLoad((m) => {
    if (m.type === "pressed") {
      const h = byDevice.get(m.deviceId);
      if (h) h.pressedAt = m.at;
    } else if (m.type === "press_acked") {
      const h = byDevice.get(m.deviceId);
      if (h) {
        h.pubackAt = m.at;
        h.pressError = m.error;
      }
    } else if (m.type === "command" && m.cmdType === "sos_received") {
      const h = byDevice.get(m.deviceId);
      if (h && h.sosReceivedAt === undefined) h.sosReceivedAt = m.at;
    }
  });
  cleanups.push(async () => load.stop());
  const { ms } = await load.ask(
    { type: "connect", url: brokerUrl, topicPrefix, telemetry, sos: everyone.map((h) => h.device) },
    "connected",
  );
  say(`${telemetry.length + everyone.length} devices connected in ${ms} ms`);

  let lastAcked = 0;
  let lastAt = Date.now();
  const reporter = setInterval(() => {
    const p = load.progress();
    const now = Date.now();
    const rate = Math.round(((p.acked - lastAcked) * 1000) / (now - lastAt));
    lastAcked = p.acked;
    lastAt = now;
    const pressed = everyone.filter((h) => h.pressedAt !== undefined).length;
    say(
      `telemetry ${rate}/s, in flight ${p.inFlight}, errors ${p.errors}; SOS pressed ${pressed}, SMS ${twilio.messages.length}, push ${push.received.length}; ingest commits ${system.ingest.stats.batches}; load ${load1()}`,
    );
  }, 5_000);
  reporter.unref();

  const profiler = args.profile ? new Session() : undefined;
  profiler?.connect();
  await profiler?.post("Profiler.enable");

  // --- background: steady telemetry, SOS presses spread over the duration ---
  const waitMs = waitMinutes * 60_000;
  load.send({
    type: "rate",
    perS: ratePerS,
    window,
    abnormal,
    tag: `bg${Date.now().toString(36)}`,
  });
  say(`background: ${ratePerS}/s telemetry, warming up for ${warmupS} s`);
  await sleep(warmupS * 1000);
  await profiler?.post("Profiler.start");
  const bg0 = await count(load);
  const bgCpu0 = process.cpuUsage();
  load.send({ type: "press", presses: schedule(background, 0, durationS * 1000) });
  say(`background: ${background.length} SOS presses over ${durationS} s`);
  const bgStarted = Date.now();
  await sleep(durationS * 1000);
  const bgMissing = await settle(background, twilio, push, load, {
    step1: true,
    deadline: bgStarted + durationS * 1000 + waitMs + timeoutMs,
  });
  const bg1 = await count(load);
  const bgCpu = process.cpuUsage(bgCpu0);
  const backgroundPerS = ((bg1.acked - bg0.acked) * 1000) / (bg1.at - bg0.at);
  const bgKincareCpu = (bgCpu.user + bgCpu.system) / 1000 / (bg1.at - bg0.at);
  const bgLoadCpu = (bg1.cpuMs - bg0.cpuMs) / (bg1.at - bg0.at);
  const bgLoadAvg = load1();
  say(
    `background: ${Math.round(backgroundPerS)}/s acknowledged over ${Math.round((bg1.at - bg0.at) / 1000)} s; kincare used ${bgKincareCpu.toFixed(2)} of a core, the devices ${bgLoadCpu.toFixed(2)}; ${bgMissing} households still missing a message; load ${bgLoadAvg}`,
  );

  // --- flood: every telemetry device keeps its window full; SOS presses in the middle ---
  load.send({ type: "flood", window: floodWindow, abnormal, tag: `fl${Date.now().toString(36)}` });
  const fl0 = await count(load);
  load.send({ type: "press", presses: schedule(flood, floodS * 250, floodS * 500) });
  say(`flood: window ${floodWindow} on every device for ${floodS} s, ${flood.length} SOS presses`);
  const flStarted = Date.now();
  await sleep(floodS * 1000);
  const fl1 = await count(load);
  const floodPerS = ((fl1.acked - fl0.acked) * 1000) / (fl1.at - fl0.at);
  const flLoadAvg = load1();
  say(`flood: ${Math.round(floodPerS)}/s acknowledged; load ${flLoadAvg}`);
  load.send({
    type: "rate",
    perS: ratePerS,
    window,
    abnormal,
    tag: `bh${Date.now().toString(36)}`,
  });
  const flMissing = await settle(flood, twilio, push, load, {
    step1: true,
    deadline: flStarted + floodS * 750 + waitMs + timeoutMs,
  });
  say(`after the flood: ${flMissing} households still missing a message`);

  if (profiler) {
    const { profile } = await profiler.post("Profiler.stop");
    writeFileSync(args.profile!, JSON.stringify(profile));
    say(`CPU profile of both phases written to ${args.profile}; self time, top 25:`);
    for (const line of summariseProfile(profile, 25)) say(line);
    profiler.disconnect();
  }
  clearInterval(reporter);
  await load.ask({ type: "halt" }, "halted");
  await load.ask({ type: "disconnect" }, "disconnected");
  await system.ingest.drain();

  const bg = outcome(background, twilio, push);
  const fl = outcome(flood, twilio, push);
  const steps = await stepErrors(system, everyone);
  const allSteps = Object.values(steps.errors).flat();
  const bgSms = summary(bg.sms);
  const bgPush = summary(bg.push);
  const flSms = summary(fl.sms);
  const flPush = summary(fl.push);
  const stepAll = summary(allSteps);
  const perStep = Object.fromEntries(Object.entries(steps.errors).map(([k, v]) => [k, summary(v)]));
  const pressErrors = everyone.filter((h) => h.pressError).length;
  say(
    `background SOS: SMS p50 ${bgSms.p50} p95 ${bgSms.p95} p99 ${bgSms.p99} max ${bgSms.max} ms (${bgSms.n}); push p50 ${bgPush.p50} p95 ${bgPush.p95} p99 ${bgPush.p99} max ${bgPush.max} ms (${bgPush.n}); device sos_received p99 ${summary(bg.deviceAck).p99} ms`,
  );
  say(
    `flood SOS: SMS p50 ${flSms.p50} p99 ${flSms.p99} max ${flSms.max} ms (${flSms.n}); push p50 ${flPush.p50} p99 ${flPush.p99} max ${flPush.max} ms; device sos_received p99 ${summary(fl.deviceAck).p99} ms`,
  );
  const bgPath = await path(system, background, twilio);
  const flPath = await path(system, flood, twilio);
  for (const [k, v] of Object.entries(bgPath))
    say(`background path ${k}: p50 ${v.p50} p99 ${v.p99} ms`);
  for (const [k, v] of Object.entries(flPath)) say(`flood path ${k}: p50 ${v.p50} p99 ${v.p99} ms`);
  const jobSummary = jobRuns.summary();
  for (const [k, v] of Object.entries(jobSummary))
    say(`job ${k}: ${v.n} runs, p50 ${v.p50} ms, p99 ${v.p99} ms`);
  say(
    `at most ${jobRuns.peak()} jobs ran at once; ingest: ${system.ingest.stats.batches} commits, ${Math.round(system.ingest.stats.stored / Math.max(1, system.ingest.stats.batches))} readings each on average`,
  );
  for (const [k, v] of Object.entries(perStep))
    say(`step ${k}: late by p50 ${v.p50} p99 ${v.p99} max ${v.max} ms (${v.n} steps)`);
  say(
    `lost: SMS ${bg.lostSms + fl.lostSms}, push ${bg.lostPush + fl.lostPush}, step-1 SMS ${bg.lostStep1 + fl.lostStep1}; duplicated ${bg.duplicated + fl.duplicated}; ${steps.alerts} SOS alerts for ${everyone.length} residents; ${pressErrors} presses not acknowledged; ${twilio.messages.filter((m) => m.httpStatus !== 201).length} Twilio errors`,
  );

  const result = {
    bench: "sos",
    background_per_s: Math.round(backgroundPerS),
    sms_p50_ms: bgSms.p50,
    sms_p95_ms: bgSms.p95,
    sms_p99_ms: bgSms.p99,
    sms_max_ms: bgSms.max,
    push_p50_ms: bgPush.p50,
    push_p95_ms: bgPush.p95,
    push_p99_ms: bgPush.p99,
    push_max_ms: bgPush.max,
    flood_sos_p99_ms: flSms.p99,
    // A press is lost when its family member got no SMS or no push within --timeout.
    lost: everyone.filter((h) => lostOne(h, twilio, push)).length,
    duplicated: bg.duplicated + fl.duplicated + Math.max(0, steps.duplicatesAlerts),
    step_error_p99_ms: stepAll.p99,
    // Extra keys.
    step_error_max_ms: stepAll.max,
    step_error_measured: `steps 0 and 1: timeline start - jobs.due_at (step 1 due ${waitMinutes} min after step 0)`,
    step0_error_p99_ms: summary([...steps.errors["background:0"]!, ...steps.errors["flood:0"]!])
      .p99,
    step1_error_p99_ms: summary([...steps.errors["background:1"]!, ...steps.errors["flood:1"]!])
      .p99,
    flood_step_error_p99_ms: summary([...steps.errors["flood:0"]!, ...steps.errors["flood:1"]!])
      .p99,
    flood_sos_p50_ms: flSms.p50,
    flood_sos_max_ms: flSms.max,
    flood_push_p99_ms: flPush.p99,
    flood_per_s: Math.round(floodPerS),
    device_ack_p99_ms: summary(bg.deviceAck).p99,
    flood_device_ack_p99_ms: summary(fl.deviceAck).p99,
    step1_sms_missing: bg.lostStep1 + fl.lostStep1,
    path_ms: { background: bgPath, flood: flPath },
    job_run_ms: jobSummary,
    db: dialect,
    broker: "embedded",
    residents: background.length,
    flood_residents: flood.length,
    telemetry_devices: telemetry.length,
    rate: ratePerS,
    window,
    flood_window: floodWindow,
    jobs_poll_ms: config.JOBS_POLL_MS,
    jobs_concurrency: config.JOBS_CONCURRENCY,
    kincare_cpu_share: Math.round(bgKincareCpu * 100) / 100,
    load_avg: {
      start: Number(loadAtStart),
      background: Number(bgLoadAvg),
      flood: Number(flLoadAvg),
    },
  };

  await runCleanups();
  console.log(JSON.stringify(result));
}

function lostOne(h: Household, twilio: FakeTwilio, push: FakePush): boolean {
  if (h.pressedAt === undefined) return true;
  const limit = h.pressedAt + timeoutMs;
  const sms = twilio.messages.some((m) => m.to === h.familyPhone && epochOf(m.receivedAt) <= limit);
  const pushed = push.received.some(
    (p) => p.endpoint === h.endpoint && epochOf(p.receivedAt) <= limit,
  );
  return !sms || !pushed;
}

/**
 * A diagnostic, not kincare's behaviour: how long each kind of job's handler ran (the scheduler's
 * definitions are wrapped before it starts), and how many ran at once.
 */
function timeJobs(system: System) {
  const definitions = (
    system.scheduler as unknown as {
      definitions: Map<string, { handler: (ctx: unknown, payload: unknown) => Promise<void> }>;
    }
  ).definitions;
  const runs = new Map<string, number[]>();
  let running = 0;
  let peak = 0;
  for (const [kind, def] of definitions) {
    const handler = def.handler;
    def.handler = async (ctx, payload) => {
      const started = performance.now();
      running++;
      peak = Math.max(peak, running);
      try {
        await handler(ctx, payload);
      } finally {
        running--;
        const list = runs.get(kind) ?? [];
        list.push(performance.now() - started);
        runs.set(kind, list);
      }
    };
  }
  return {
    peak: () => peak,
    summary: () =>
      Object.fromEntries(
        [...runs].map(([kind, v]) => {
          const x = summary(v);
          return [kind, { n: x.n, p50: x.p50, p99: x.p99 }];
        }),
      ),
  };
}

/** Undone last first: the devices, kincare, the fakes, the database last. */
const cleanups: (() => Promise<void>)[] = [];
async function runCleanups() {
  while (cleanups.length > 0) {
    const step = cleanups.pop()!;
    await step().catch((error: Error) => say(`cleanup: ${error.message}`));
  }
}

main().then(
  () => process.exit(0),
  async (error) => {
    console.error(error);
    await runCleanups();
    process.exit(1);
  },
);
