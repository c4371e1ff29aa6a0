import type { Generated, Selectable } from "kysely";

export const alertSeverities = ["critical", "warning", "low"] as const;
export type AlertSeverity = (typeof alertSeverities)[number];
export const alertStatuses = ["open", "acknowledged", "resolved", "cancelled"] as const;
export type AlertStatus = (typeof alertStatuses)[number];
export type AlertSource = "device_event" | "vital_rule" | "device_health" | "check_in" | "visit";

export interface AlertsTable {
  id: string;
  resident_id: string;
  kind: string;
  severity: AlertSeverity;
  status: AlertStatus;
  source_type: AlertSource;
  source_id: string | null;
  /** At most one open alert per resident and key; null for alerts that never merge. */
  open_key: string | null;
  summary: string;
  details: string | null;
  opened_at: string;
  updated_at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  closed_at: string | null;
  closed_by: string | null;
  close_reason: string | null;
  /** The escalation chain as it was when the alert was raised (JSON); null: no escalation. */
  chain: string | null;
  /** The next escalation step to run: the fence every escalation job checks. */
  step: Generated<number>;
  next_step_at: string | null;
  /** Short code a recipient replies with by SMS to acknowledge. */
  code: string | null;
  acknowledged_via: string | null;
  acknowledged_phone: string | null;
}
export type AlertRow = Selectable<AlertsTable>;

export interface AlertTimelineTable {
  id: string;
  alert_id: string;
  at: string;
  type: string;
  actor_user_id: string | null;
  details: string | null;
}
