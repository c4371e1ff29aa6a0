// What a simulated person's devices measure: values with a daily rhythm (a heart rate lower at
// night, a blood-pressure surge after waking, glucose after meals) around a baseline of their own,
// and now and then an episode of abnormal values that lasts a few readings, as real ones do.
// Shared by the simulator and the ingest benchmark's load generator; no MQTT, no database.
import type { DeviceKind } from "../src/devices/devices.table";

export type Rng = () => number;

/** A small seeded generator (mulberry32): the same seed gives the same simulated day. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Milliseconds until the next event of a Poisson process with `perMs` events per millisecond. */
export function nextArrivalMs(rng: Rng, perMs: number): number {
  if (perMs <= 0) return Number.POSITIVE_INFINITY;
  return -Math.log(1 - rng()) / perMs;
}

const between = (rng: Rng, min: number, max: number) => min + (max - min) * rng();
const noise = (rng: Rng, spread: number) => (rng() + rng() + rng() - 1.5) * spread;
const round1 = (v: number) => Math.round(v * 10) / 10;

const hourFormats = new Map<string, Intl.DateTimeFormat>();
/** The local hour (0-24, fractional) of an instant in an IANA time zone. */
export function localHour(at: Date, timeZone: string): number {
  let format = hourFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      hour: "numeric",
      minute: "numeric",
      hourCycle: "h23",
    });
    hourFormats.set(timeZone, format);
  }
  const [h, m] = format.format(at).split(":").map(Number) as [number, number];
  return h + m / 60;
}

/** The kinds that take measurements, and what each one measures. */
const measures: Partial<Record<DeviceKind, readonly Vital[]>> = {
  blood_pressure_monitor: ["blood_pressure", "heart_rate"],
  pulse_oximeter: ["spo2", "heart_rate"],
  thermometer: ["body_temperature"],
  scale: ["weight"],
  glucose_meter: ["blood_glucose"],
  // A hub relays a wrist band: pulse, breathing and the day's steps.
  hub: ["heart_rate", "respiratory_rate", "steps"],
};

type Vital =
  | "heart_rate"
  | "blood_pressure"
  | "spo2"
  | "body_temperature"
  | "blood_glucose"
  | "weight"
  | "respiratory_rate"
  | "steps";

export const measuringKinds = Object.keys(measures) as DeviceKind[];
export const measuresVitals = (kind: DeviceKind) => measures[kind] !== undefined;

/** One person's baselines, drawn once per simulated device. */
export class Person {
  private readonly hr: number;
  private readonly sys: number;
  private readonly dia: number;
  private readonly spo2: number;
  private readonly temp: number;
  private readonly glucose: number;
  private readonly weight: number;
  private readonly rr: number;
  private readonly dailySteps: number;
  /** Readings left in an abnormal episode, and which vital it affects. */
  private episode: { vital: Vital; left: number; severity: number } | null = null;

  constructor(
    private readonly rng: Rng,
    readonly timeZone = "UTC",
  ) {
    this.hr = between(rng, 62, 80);
    this.sys = between(rng, 118, 145);
    this.dia = between(rng, 70, 86);
    this.spo2 = between(rng, 95, 98);
    this.temp = between(rng, 36.3, 36.8);
    this.glucose = between(rng, 95, 130);
    this.weight = between(rng, 48, 88);
    this.rr = between(rng, 13, 18);
    this.dailySteps = between(rng, 1500, 6000);
  }

  /**
   * The readings a device of `kind` takes at `at`, in the shapes of devices/PROTOCOL.md. With
   * probability `abnormal` an episode starts: one vital outside its normal range for 1-4 readings,
   * occasionally far enough to be critical.
   */
  readings(kind: DeviceKind, at: Date, abnormal: number): Record<string, unknown>[] {
    const vitals = measures[kind];
    if (!vitals) return [];
    const h = localHour(at, this.timeZone);
    if (!this.episode && this.rng() < abnormal) {
      const candidates = vitals.filter((v) => v !== "steps" && v !== "weight");
      const vital = candidates[Math.floor(this.rng() * candidates.length)];
      if (vital)
        this.episode = {
          vital,
          left: 1 + Math.floor(this.rng() * 4),
          severity: this.rng() < 0.15 ? 2 : 1,
        };
    }
    const ep = this.episode;
    const bad = (v: Vital) => (ep && ep.vital === v ? ep.severity : 0);
    if (ep && vitals.includes(ep.vital) && --ep.left <= 0) this.episode = null;
    // +1 at 16:00, -1 at 04:00: most vitals follow the body's day.
    const day = Math.cos((2 * Math.PI * (h - 16)) / 24);
    const waking = Math.exp(-((h - 8) ** 2) / 6);
    const meals = [8.5, 12.75, 19].reduce(
      (sum, m) => sum + (h >= m ? Math.exp(-(h - m) / 1.2) : 0),
      0,
    );
    const r = this.rng;
    const out: Record<string, unknown>[] = [];
    for (const vital of vitals) {
      const b = bad(vital);
      switch (vital) {
        case "heart_rate": {
          let v = this.hr + 6 * day + noise(r, 6);
          if (b) v = r() < 0.7 ? between(r, 114, 126) + (b - 1) * 12 : between(r, 44, 48) - b * 3;
          out.push({ type: "heart_rate", unit: "/min", value: Math.round(v) });
          break;
        }
        case "blood_pressure": {
          let sys = this.sys + 10 * waking + 4 * day + noise(r, 10);
          let dia = this.dia + 5 * waking + 2 * day + noise(r, 6);
          if (b) {
            sys = between(r, 163, 176) + (b - 1) * 12;
            dia = between(r, 96, 104) + (b - 1) * 10;
          }
          out.push({
            type: "blood_pressure",
            unit: "mm[Hg]",
            systolic: Math.round(sys),
            diastolic: Math.round(Math.min(dia, sys - 25)),
          });
          break;
        }
        case "spo2": {
          let v = this.spo2 - 0.8 * (day < 0 ? -day : 0) + noise(r, 1.5);
          if (b) v = between(r, 89, 91.5) - (b - 1) * 3;
          out.push({ type: "spo2", unit: "%", value: Math.min(100, Math.round(v)) });
          break;
        }
        case "body_temperature": {
          let v = this.temp + 0.3 * day + noise(r, 0.2);
          if (b) v = between(r, 38, 38.7) + (b - 1) * 1.1;
          out.push({ type: "body_temperature", unit: "Cel", value: round1(v) });
          break;
        }
        case "blood_glucose": {
          let v = this.glucose + 55 * meals + noise(r, 12);
          if (b) v = r() < 0.8 ? between(r, 200, 260) + (b - 1) * 60 : between(r, 60, 66);
          out.push({ type: "blood_glucose", unit: "mg/dL", value: Math.round(v) });
          break;
        }
        case "weight":
          out.push({ type: "weight", unit: "kg", value: round1(this.weight + noise(r, 0.4)) });
          break;
        case "respiratory_rate": {
          let v = this.rr + day + noise(r, 2);
          if (b) v = between(r, 25, 28) + (b - 1) * 3;
          out.push({ type: "respiratory_rate", unit: "/min", value: Math.round(v) });
          break;
        }
        case "steps": {
          // The day's count so far: nothing before 07:00, most of it by the evening.
          const share = Math.min(1, Math.max(0, (h - 7) / 14));
          const v = this.dailySteps * share + (share > 0 ? noise(r, 40) : 0);
          out.push({ type: "steps", unit: "{steps}", value: Math.max(0, Math.round(v)) });
          break;
        }
      }
    }
    return out;
  }
}
