// The simulator's devices and their credentials. With --register-demo, devices are registered
// for the residents of the demo community (npm run demo) through the registry's service functions,
// against the database DATABASE_URL names. kincare shows a device's secret once, so the
// credentials are kept in a local file (./data/simulator-devices.json by default, readable by its
// owner only) and a second run reuses them; a device whose secret no longer matches (the file is
// from another database, or someone rotated it) gets a fresh one.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { findUserByLogin } from "../src/accounts/accounts.repository";
import type { Config } from "../src/config";
import { type Db, openDatabase } from "../src/db/database";
import { loadSecretHasher, type SecretHasher } from "../src/devices/credentials";
import type { DeviceKind } from "../src/devices/devices.table";
import { actorOf, type FleetDevice, registerOne } from "./fleet";
import type { SimulatedDevice } from "./simulator";

/** What each demo resident's home has, in the order devices are added with --devices N. */
const kit: DeviceKind[] = [
  "sos_pendant",
  "blood_pressure_monitor",
  "pulse_oximeter",
  "motion_sensor",
  "thermometer",
  "glucose_meter",
  "door_sensor",
  "scale",
  "hub",
  "fall_detector",
];
const DEMO_OPERATOR = "operator@demo.kincare.local";
const DEMO_DOMAIN = "@demo.kincare.local";
const HEARTBEAT_S = 60;

interface CredentialsFile {
  comment: string;
  database: string;
  devices: (FleetDevice & { residentName: string })[];
}

/** Names the database without its password: a file made for another one is not reused. */
function databaseName(config: Config): string {
  if (config.database.dialect === "sqlite") return `sqlite:${config.database.file}`;
  const url = new URL(config.database.url);
  url.password = "";
  return url.toString();
}

function readFile(file: string): CredentialsFile | null {
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, "utf8")) as CredentialsFile;
}

function writeFile(file: string, content: CredentialsFile) {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The file's devices that still work: active, with the same secret, for the same resident. */
async function stillValid(db: Db, hasher: SecretHasher, devices: CredentialsFile["devices"]) {
  if (devices.length === 0) return [];
  const rows = await db
    .selectFrom("devices")
    .select(["id", "status", "secret_hash", "resident_id"])
    .where(
      "id",
      "in",
      devices.map((d) => d.id),
    )
    .execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  return devices.filter((d) => {
    const row = byId.get(d.id);
    return (
      row?.status === "active" &&
      row.resident_id === d.residentId &&
      hasher.verify(d.secret, row.secret_hash)
    );
  });
}

async function demoResidents(db: Db) {
  return db
    .selectFrom("residents as r")
    .innerJoin("circle_members as c", "c.resident_id", "r.id")
    .innerJoin("users as u", "u.id", "c.user_id")
    .select(["r.id", "r.full_name", "r.time_zone"])
    .where("c.level", "=", "primary")
    .where("u.email", "like", `%${DEMO_DOMAIN}`)
    .where("r.status", "!=", "archived")
    .orderBy("r.created_at")
    .distinct()
    .execute();
}

export async function loadDemoDevices(
  config: Config,
  opts: { file: string; register: boolean; devices?: number; log: (line: string) => void },
): Promise<SimulatedDevice[]> {
  const saved = readFile(opts.file);
  const database = databaseName(config);
  if (!opts.register) {
    if (!saved)
      throw new Error(
        `no device credentials in ${opts.file}: run with --register-demo (after npm run demo)`,
      );
    return saved.devices.map(toSimulated);
  }
  const { db, close } = openDatabase(config.database);
  try {
    const operator = await findUserByLogin(db, { email: DEMO_OPERATOR });
    if (!operator) throw new Error(`no demo community in ${database}: run npm run demo first`);
    const residents = await demoResidents(db);
    if (residents.length === 0)
      throw new Error(`the demo community in ${database} has no residents: run npm run demo`);
    const hasher = await loadSecretHasher(db);
    const fromFile = saved?.database === database ? saved.devices : [];
    if (saved && saved.database !== database)
      opts.log(`${opts.file} was made for ${saved.database}: registering afresh`);
    const valid = await stillValid(db, hasher, fromFile);
    const actor = await actorOf(db, operator.id);
    const endpoint = { url: "", topicPrefix: config.MQTT_TOPIC_PREFIX };
    const wanted = opts.devices ?? kit.length * residents.length;
    const result: CredentialsFile["devices"] = [];
    let registered = 0;
    // Slot i: resident i mod n, the (i div n)-th thing in their kit, round after round.
    for (let i = 0; i < wanted; i++) {
      const resident = residents[i % residents.length]!;
      const slot = Math.floor(i / residents.length);
      const kind = kit[slot % kit.length]!;
      const serial = `SIM-${resident.id.slice(-8)}-${slot + 1}`;
      const known = valid.find((d) => d.serial === serial && d.kind === kind);
      if (known) {
        result.push(known);
        continue;
      }
      const device = await registerOne(
        db,
        { hasher, endpoint },
        actor,
        { id: resident.id, timeZone: resident.time_zone },
        kind,
        serial,
        HEARTBEAT_S,
      );
      registered++;
      result.push({ ...device, residentName: resident.full_name });
    }
    // Devices of earlier, larger runs stay in the file for the next one.
    for (const d of valid) if (!result.includes(d)) result.push(d);
    writeFile(opts.file, {
      comment:
        "Device credentials for npm run devices:simulate. kincare shows a secret only once: keep this file private.",
      database,
      devices: result,
    });
    opts.log(
      `${registered} devices registered, ${result.length - registered} reused, for ${residents.length} demo residents; credentials in ${opts.file}`,
    );
    return result.slice(0, wanted).map(toSimulated);
  } finally {
    await close();
  }
}

function toSimulated(d: CredentialsFile["devices"][number]): SimulatedDevice {
  return {
    id: d.id,
    secret: d.secret,
    kind: d.kind,
    heartbeatIntervalS: d.heartbeatIntervalS,
    timeZone: d.timeZone,
    label: `${d.residentName}'s ${d.kind.replace(/_/g, " ")}`,
  };
}
