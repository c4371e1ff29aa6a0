import type { Selectable } from "kysely";

export const deviceKinds = [
  "sos_button",
  "sos_pendant",
  "blood_pressure_monitor",
  "pulse_oximeter",
  "thermometer",
  "scale",
  "glucose_meter",
  "fall_detector",
  "motion_sensor",
  "door_sensor",
  "hub",
] as const;
export type DeviceKind = (typeof deviceKinds)[number];

export interface InstanceKeysTable {
  name: string;
  value: string;
  created_at: string;
}

export interface DevicesTable {
  id: string;
  resident_id: string;
  kind: DeviceKind;
  model: string;
  serial: string;
  heartbeat_interval_s: number;
  /** HMAC-SHA256 of the secret under an instance key: the secret is long and random, so fast is safe. */
  secret_hash: string;
  /** The same secret in Mosquitto's password-file format, for an external broker. */
  mosquitto_hash: string;
  status: "active" | "revoked";
  connection: "never" | "online" | "offline";
  last_seen_at: string | null;
  battery: number | null;
  rssi: number | null;
  created_by: string | null;
  created_at: string;
  secret_rotated_at: string;
  revoked_at: string | null;
}
export type DeviceRow = Selectable<DevicesTable>;

export interface DeviceAssignmentsTable {
  device_id: string;
  resident_id: string;
  from_at: string;
  to_at: string | null;
}

export interface ReadingsTable {
  resident_id: string;
  device_id: string;
  msg_id: string;
  type: string;
  value: number;
  unit: string;
  measured_at: string;
  received_at: string;
}

export interface DeviceEventsTable {
  resident_id: string;
  device_id: string;
  msg_id: string;
  type: string;
  occurred_at: string;
  received_at: string;
}

export interface QuarantineTable {
  id: string;
  device_id: string | null;
  topic: string;
  reason: string;
  detail: string | null;
  /** The payload as received (truncated), kept aside for an operator to look at. */
  payload: string;
  received_at: string;
}

export interface VitalStatesTable {
  resident_id: string;
  type: string;
  level: "normal" | "warning" | "critical";
  outside_count: number;
  outside_since: string | null;
  updated_at: string;
}

export interface ResidentActivityTable {
  resident_id: string;
  last_activity_at: string;
  last_check_in_at: string | null;
}
