// Alarm rules, evaluated as readings and events arrive, inside the transaction that stores them:
// the alert commits with the message that caused it, or neither does.
import { closeAlert, findOpenAlert, type Raised, raiseAlert } from "../alerts/alerts.service";
import { addTimeline } from "../alerts/timeline";
import type { CarePlan, VitalType } from "../careplans/careplans.schemas";
import { iso } from "../clock";
import type { Executor } from "../db/database";
import { tellCancelled } from "../escalation/start";
import { inWindow, localTime } from "../time";
import type { VitalStatesTable } from "./devices.table";
import type { EventType, ParsedReading } from "./protocol";

export interface ResidentContext {
  residentId: string;
  status: "active" | "paused" | "archived";
  timeZone: string;
  plan: CarePlan;
}

export interface EventRuleResult {
  raised?: Raised;
  /** An SOS alert the resident cancelled from the device. */
  cancelled?: string;
}

const eventAlerts: Partial<
  Record<
    EventType,
    { severity: "critical" | "warning" | "low"; summary: string; mutedWhenPaused: boolean }
  >
> = {
  sos: { severity: "critical", summary: "SOS button pressed", mutedWhenPaused: false },
  fall: { severity: "critical", summary: "A fall was detected", mutedWhenPaused: false },
  no_motion: {
    severity: "warning",
    summary: "No movement detected for a long time",
    mutedWhenPaused: true,
  },
  tamper: { severity: "warning", summary: "A device reports tampering", mutedWhenPaused: false },
  low_battery: { severity: "low", summary: "A device's battery is low", mutedWhenPaused: false },
};

export async function applyEventRules(
  db: Executor,
  ctx: ResidentContext,
  event: { deviceId: string; msgId: string; type: EventType; occurredAt: string },
  now: Date,
  settings: { sosCancelWindowS: number },
): Promise<EventRuleResult> {
  const sourceId = `${event.deviceId}:${event.msgId}`;
  if (event.type === "sos_cancel") {
    const open = await findOpenAlert(db, ctx.residentId, "sos");
    if (
      open &&
      open.status === "open" &&
      now.getTime() - Date.parse(open.opened_at) <= settings.sosCancelWindowS * 1000
    ) {
      await closeAlert(db, open, "cancelled", "cancelled by the resident from the device", now);
      await tellCancelled(db, open, now);
      return { cancelled: open.id };
    }
    if (open)
      await addTimeline(db, open.id, now, "cancel_ignored", null, {
        reason: "too late, or someone has taken charge",
      });
    return {};
  }
  if (event.type === "door_open") {
    if (ctx.status === "paused") return {};
    const local = localTime(new Date(event.occurredAt), ctx.timeZone);
    if (!inWindow(local, ctx.plan.nightWindow.start, ctx.plan.nightWindow.end)) return {};
    return {
      raised: await raiseAlert(
        db,
        {
          residentId: ctx.residentId,
          kind: "door_open_night",
          severity: "warning",
          sourceType: "device_event",
          sourceId,
          openKey: "door_open_night",
          summary: `Door opened at night (${local})`,
        },
        now,
      ),
    };
  }
  const rule = eventAlerts[event.type];
  if (!rule || (rule.mutedWhenPaused && ctx.status === "paused")) return {};
  const openKey =
    event.type === "low_battery" || event.type === "tamper"
      ? `${event.type}:${event.deviceId}`
      : event.type;
  return {
    raised: await raiseAlert(
      db,
      {
        residentId: ctx.residentId,
        kind: event.type,
        severity: rule.severity,
        sourceType: "device_event",
        sourceId,
        openKey,
        summary: rule.summary,
        details: { deviceId: event.deviceId },
      },
      now,
    ),
  };
}

type Level = VitalStatesTable["level"];

export interface VitalState {
  level: Level;
  outsideCount: number;
  outsideSince: string | null;
  /** The measurement time last evaluated: older readings (sent late) are stored, not re-judged. */
  lastMeasuredAt: string;
}

const GLUCOSE_MMOL = 18.016;

type Bounds = { min: number | null; max: number | null };
const outside = (b: Bounds, v: number, margin: number) =>
  (b.min !== null && v < b.min + margin) || (b.max !== null && v > b.max - margin);

/** Where a value stands; leaving a level needs the value back inside by the hysteresis margin. */
export function classify(
  rule: CarePlan["vitalRules"][VitalType],
  value: number,
  current: Level,
): Level {
  const h = rule.hysteresis;
  if (outside(rule.critical, value, current === "critical" ? h : 0)) return "critical";
  if (outside(rule.normal, value, current === "normal" ? 0 : h)) return "warning";
  return "normal";
}

const vitalNames: Record<VitalType, string> = {
  heart_rate: "Heart rate",
  systolic: "Systolic blood pressure",
  diastolic: "Diastolic blood pressure",
  spo2: "Blood oxygen (SpO2)",
  body_temperature: "Body temperature",
  blood_glucose: "Blood glucose",
  weight: "Weight",
  respiratory_rate: "Breathing rate",
};

/**
 * Judges one new reading against the plan's rule and returns the state to keep. Raises a warning
 * or critical alert after the plan's N readings (or M minutes) outside; a warning that comes back
 * inside resolves itself, a critical alert only once a person acknowledged it.
 */
export async function applyVitalRule(
  db: Executor,
  ctx: ResidentContext,
  reading: ParsedReading & { deviceId: string; msgId: string },
  state: VitalState,
  now: Date,
): Promise<VitalState> {
  if (reading.type === "steps") return state;
  const type = reading.type as VitalType;
  const rule = ctx.plan.vitalRules[type];
  if (!rule?.enabled || reading.measuredAt < state.lastMeasuredAt) return state;
  const value =
    type === "blood_glucose" && rule.unit === "mmol/L"
      ? reading.value / GLUCOSE_MMOL
      : reading.value;
  const level = classify(rule, value, state.level);
  const openKey = `vital:${type}`;
  if (level === "normal") {
    if (state.level !== "normal" || state.outsideCount > 0) {
      const open = await findOpenAlert(db, ctx.residentId, openKey);
      if (open) {
        if (open.severity === "critical" && open.status === "open") {
          await addTimeline(db, open.id, now, "back_in_range", null, { type, value });
        } else {
          await closeAlert(
            db,
            open,
            "resolved",
            `${vitalNames[type]} back in range (${value} ${rule.unit})`,
            now,
          );
        }
      }
    }
    return {
      level: "normal",
      outsideCount: 0,
      outsideSince: null,
      lastMeasuredAt: reading.measuredAt,
    };
  }
  const outsideCount = state.outsideCount + 1;
  const outsideSince = state.outsideSince ?? reading.measuredAt;
  const longEnough =
    rule.minutes !== null &&
    Date.parse(reading.measuredAt) - Date.parse(outsideSince) >= rule.minutes * 60_000;
  if (outsideCount < rule.consecutive && !longEnough) {
    return { level: state.level, outsideCount, outsideSince, lastMeasuredAt: reading.measuredAt };
  }
  // A new level, or no alert open for this vital (someone resolved it): raise, or join and escalate.
  if (level !== state.level || !(await findOpenAlert(db, ctx.residentId, openKey))) {
    await raiseAlert(
      db,
      {
        residentId: ctx.residentId,
        kind: "vital",
        severity: level,
        sourceType: "vital_rule",
        sourceId: `${reading.deviceId}:${reading.msgId}`,
        openKey,
        summary: `${vitalNames[type]} ${value} ${rule.unit} is outside the ${level === "critical" ? "critical" : "normal"} range`,
        details: {
          type,
          value,
          unit: rule.unit,
          measuredAt: reading.measuredAt,
          readingsOutside: outsideCount,
        },
      },
      now,
    );
  }
  return { level, outsideCount, outsideSince, lastMeasuredAt: reading.measuredAt };
}

export function stateRow(
  residentId: string,
  type: string,
  s: VitalState,
  now: Date,
): VitalStatesTable {
  return {
    resident_id: residentId,
    type,
    level: s.level,
    outside_count: s.outsideCount,
    outside_since: s.outsideSince,
    updated_at: s.lastMeasuredAt || iso(now),
  };
}
