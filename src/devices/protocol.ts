// The device protocol (devices/PROTOCOL.md): topics, payload shapes, units and their conversion.
// Pure functions: parsing a message never touches the database.

export const eventTypes = [
  "sos",
  "sos_cancel",
  "fall",
  "no_motion",
  "motion",
  "door_open",
  "low_battery",
  "tamper",
  "check_in",
  "test",
] as const;
export type EventType = (typeof eventTypes)[number];

/** Stored reading types: blood pressure arrives as one reading and is stored as two. */
export const readingTypes = [
  "heart_rate",
  "systolic",
  "diastolic",
  "spo2",
  "body_temperature",
  "blood_glucose",
  "weight",
  "respiratory_rate",
  "steps",
] as const;
export type ReadingType = (typeof readingTypes)[number];

/** The canonical (UCUM) unit each type is stored in. */
export const canonicalUnit: Record<ReadingType, string> = {
  heart_rate: "/min",
  systolic: "mm[Hg]",
  diastolic: "mm[Hg]",
  spo2: "%",
  body_temperature: "Cel",
  blood_glucose: "mg/dL",
  weight: "kg",
  respiratory_rate: "/min",
  steps: "{steps}",
};

export const loinc: Record<ReadingType | "blood_pressure", string> = {
  heart_rate: "8867-4",
  blood_pressure: "85354-9",
  systolic: "8480-6",
  diastolic: "8462-4",
  spo2: "2708-6",
  body_temperature: "8310-5",
  blood_glucose: "41653-7",
  weight: "29463-7",
  respiratory_rate: "9279-1",
  steps: "55423-8",
};

/** Values outside these are not a reading of a living person: quarantined as absurd. */
const plausible: Record<ReadingType, [number, number]> = {
  heart_rate: [15, 300],
  systolic: [40, 300],
  diastolic: [20, 200],
  spo2: [40, 100],
  body_temperature: [25, 45],
  blood_glucose: [10, 1_500],
  weight: [2, 400],
  respiratory_rate: [2, 80],
  steps: [0, 200_000],
};

type Converter = (v: number) => number;
const same: Converter = (v) => v;
const MGDL_PER_MMOL_GLUCOSE = 18.016;

/** Accepted units (UCUM and common aliases) per incoming type, with conversion to canonical. */
const units: Record<string, Record<string, Converter>> = {
  heart_rate: { "/min": same, bpm: same, "beats/min": same, "{beats}/min": same },
  respiratory_rate: { "/min": same, "breaths/min": same, "{breaths}/min": same, rpm: same },
  blood_pressure: { "mm[Hg]": same, mmHg: same, mmhg: same },
  spo2: { "%": same },
  body_temperature: {
    Cel: same,
    "°C": same,
    C: same,
    degC: same,
    "[degF]": (f) => ((f - 32) * 5) / 9,
    "°F": (f) => ((f - 32) * 5) / 9,
    F: (f) => ((f - 32) * 5) / 9,
    degF: (f) => ((f - 32) * 5) / 9,
  },
  blood_glucose: {
    "mg/dL": same,
    "mg/dl": same,
    "mmol/L": (v) => v * MGDL_PER_MMOL_GLUCOSE,
    "mmol/l": (v) => v * MGDL_PER_MMOL_GLUCOSE,
  },
  weight: {
    kg: same,
    "[lb_av]": (v) => v * 0.45359237,
    lb: (v) => v * 0.45359237,
    lbs: (v) => v * 0.45359237,
    g: (v) => v / 1000,
  },
  steps: { "{steps}": same, steps: same, "1": same },
};

export interface ParsedReading {
  type: ReadingType;
  value: number;
  unit: string;
  measuredAt: string;
}

export type Channel = "telemetry" | "event" | "status" | "heartbeat" | "cmd/ack";

export interface ParsedTopic {
  deviceId: string;
  channel: Channel;
}

export function topicFor(prefix: string, deviceId: string, channel: Channel | "cmd"): string {
  return `${prefix}/devices/${deviceId}/${channel}`;
}

export function parseTopic(prefix: string, topic: string): ParsedTopic | null {
  const start = `${prefix}/devices/`;
  if (!topic.startsWith(start)) return null;
  const rest = topic.slice(start.length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return null;
  const deviceId = rest.slice(0, slash);
  const channel = rest.slice(slash + 1);
  if (
    channel === "telemetry" ||
    channel === "event" ||
    channel === "status" ||
    channel === "heartbeat" ||
    channel === "cmd/ack"
  ) {
    return { deviceId, channel };
  }
  return null;
}

export class Rejection extends Error {
  constructor(
    readonly reason:
      | "bad_json"
      | "bad_shape"
      | "bad_msg_id"
      | "bad_timestamp"
      | "future_timestamp"
      | "stale_timestamp"
      | "unknown_type"
      | "unknown_unit"
      | "absurd_value"
      | "duplicate_type"
      | "unknown_topic"
      | "too_large",
    detail: string,
  ) {
    super(detail);
  }
}

const MAX_FUTURE_MS = 5 * 60_000;
const MAX_AGE_MS = 30 * 86_400_000;
export const MAX_PAYLOAD_BYTES = 16_384;

function parseJson(payload: Buffer): Record<string, unknown> {
  if (payload.length > MAX_PAYLOAD_BYTES)
    throw new Rejection("too_large", `payload over ${MAX_PAYLOAD_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(payload.toString("utf8"));
  } catch {
    throw new Rejection("bad_json", "payload is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Rejection("bad_shape", "payload must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function msgIdOf(body: Record<string, unknown>): string {
  const id = body.msgId;
  if (typeof id !== "string" || id.length === 0 || id.length > 64) {
    throw new Rejection("bad_msg_id", "msgId must be a string of 1 to 64 characters");
  }
  return id;
}

export function parseTimestamp(ts: unknown, now: Date): string {
  let ms: number;
  if (typeof ts === "number" && Number.isFinite(ts)) ms = ts;
  else if (
    typeof ts === "string" &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(ts)
  ) {
    ms = Date.parse(ts);
  } else
    throw new Rejection("bad_timestamp", "ts must be ISO-8601 with a zone, or epoch milliseconds");
  if (!Number.isFinite(ms)) throw new Rejection("bad_timestamp", "ts is not a real time");
  if (ms > now.getTime() + MAX_FUTURE_MS)
    throw new Rejection("future_timestamp", "ts is more than 5 minutes ahead");
  if (ms < now.getTime() - MAX_AGE_MS)
    throw new Rejection("stale_timestamp", "ts is more than 30 days old");
  return new Date(ms).toISOString();
}

function numberField(r: Record<string, unknown>, field: string, type: string): number {
  const v = r[field];
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new Rejection("bad_shape", `${type}.${field} must be a number`);
  return v;
}

function checkPlausible(type: ReadingType, value: number) {
  const [min, max] = plausible[type];
  if (value < min || value > max)
    throw new Rejection("absurd_value", `${type} ${value} ${canonicalUnit[type]} is not plausible`);
}

const round = (v: number) => Math.round(v * 1000) / 1000;

export interface Telemetry {
  msgId: string;
  measuredAt: string;
  readings: ParsedReading[];
}

export function parseTelemetry(payload: Buffer, now: Date): Telemetry {
  const body = parseJson(payload);
  const msgId = msgIdOf(body);
  const measuredAt = parseTimestamp(body.ts, now);
  if (!Array.isArray(body.readings) || body.readings.length === 0 || body.readings.length > 20) {
    throw new Rejection("bad_shape", "readings must be a list of 1 to 20 readings");
  }
  const readings: ParsedReading[] = [];
  for (const raw of body.readings as unknown[]) {
    if (typeof raw !== "object" || raw === null)
      throw new Rejection("bad_shape", "each reading must be an object");
    const r = raw as Record<string, unknown>;
    const type = r.type;
    if (typeof type !== "string" || !(type in units))
      throw new Rejection("unknown_type", `unknown reading type ${String(type).slice(0, 40)}`);
    const unitName = r.unit === undefined && type === "steps" ? "{steps}" : r.unit;
    const convert = typeof unitName === "string" ? units[type]?.[unitName] : undefined;
    if (!convert)
      throw new Rejection(
        "unknown_unit",
        `unknown unit ${String(unitName).slice(0, 20)} for ${type}`,
      );
    if (type === "blood_pressure") {
      for (const part of ["systolic", "diastolic"] as const) {
        const value = round(convert(numberField(r, part, type)));
        checkPlausible(part, value);
        readings.push({ type: part, value, unit: canonicalUnit[part], measuredAt });
      }
      if (readings.at(-2)!.value <= readings.at(-1)!.value) {
        throw new Rejection("absurd_value", "systolic must be above diastolic");
      }
    } else {
      const t = type as ReadingType;
      const value = round(convert(numberField(r, "value", type)));
      checkPlausible(t, value);
      readings.push({ type: t, value, unit: canonicalUnit[t], measuredAt });
    }
  }
  const seen = new Set<string>();
  for (const r of readings) {
    if (seen.has(r.type))
      throw new Rejection("duplicate_type", `${r.type} appears twice in one message`);
    seen.add(r.type);
  }
  return { msgId, measuredAt, readings };
}

export interface DeviceEvent {
  msgId: string;
  type: EventType;
  occurredAt: string;
}

export function parseEvent(payload: Buffer, now: Date): DeviceEvent {
  const body = parseJson(payload);
  const msgId = msgIdOf(body);
  const occurredAt = parseTimestamp(body.ts, now);
  const type = body.type;
  if (typeof type !== "string" || !(eventTypes as readonly string[]).includes(type)) {
    throw new Rejection("unknown_type", `unknown event type ${String(type).slice(0, 40)}`);
  }
  return { msgId, type: type as EventType, occurredAt };
}

export interface Heartbeat {
  at: string;
  battery: number | null;
  rssi: number | null;
}

export function parseHeartbeat(payload: Buffer, now: Date): Heartbeat {
  const body = parseJson(payload);
  const at = parseTimestamp(body.ts, now);
  const battery = body.battery === undefined ? null : body.battery;
  const rssi = body.rssi === undefined ? null : body.rssi;
  if (battery !== null && (typeof battery !== "number" || battery < 0 || battery > 100)) {
    throw new Rejection("bad_shape", "battery must be a percentage from 0 to 100");
  }
  if (rssi !== null && (typeof rssi !== "number" || rssi < -150 || rssi > 0)) {
    throw new Rejection("bad_shape", "rssi must be a number of dBm from -150 to 0");
  }
  return { at, battery, rssi };
}

export function parseStatus(payload: Buffer): "online" | "offline" {
  const text = payload.toString("utf8").trim();
  if (text !== "online" && text !== "offline")
    throw new Rejection("bad_shape", "status must be online or offline");
  return text;
}

export function parseCmdAck(payload: Buffer): { cmdId: string } {
  const body = parseJson(payload);
  if (typeof body.cmdId !== "string" || body.cmdId.length === 0 || body.cmdId.length > 64) {
    throw new Rejection("bad_shape", "cmdId must be a string of 1 to 64 characters");
  }
  return { cmdId: body.cmdId };
}

export const commandTypes = ["sos_received", "sos_ack", "show_code"] as const;
export type CommandType = (typeof commandTypes)[number];
