// Row types of the care-visit tables (see migrations/2026-12-03T1400-care-visits.ts).
import type { Selectable } from "kysely";

export const entryKinds = ["check_in", "check_out"] as const;
export type EntryKind = (typeof entryKinds)[number];

/**
 * How a check-in or check-out was proven: the phone's position near the home, a one-time code
 * the home device showed, a code the resident or family confirmed, or nothing (an exception).
 */
export const verificationMethods = ["gps", "device_code", "family_code", "none"] as const;
export type VerificationMethod = (typeof verificationMethods)[number];

export const outcomes = ["done", "not_done", "refused", "not_applicable"] as const;
export type Outcome = (typeof outcomes)[number];

export interface VisitEntriesTable {
  id: string;
  visit_id: string;
  resident_id: string;
  provider_id: string;
  worker_id: string;
  /** The person serving, as registered when the entry was made (EVV keeps it). */
  worker_name: string;
  /** The type of service (the catalog category), for EVV. */
  service_type: string;
  kind: EntryKind;
  /** Made by the worker's phone: sending the entry twice records it once. */
  client_id: string;
  /** When it happened, by the phone's clock (an offline entry arrives later). */
  occurred_at: string;
  received_at: string;
  offline: number;
  method: VerificationMethod;
  verified: number;
  latitude: number | null;
  longitude: number | null;
  accuracy_m: number | null;
  distance_m: number | null;
  /** outside_radius | no_proof | position_too_vague: flagged to the provider and the family. */
  exception: string | null;
  exception_reason: string | null;
  notes: string | null;
  /** JSON { mood, appetite, concerns } (check-out). */
  wellbeing: string | null;
  duration_comment: string | null;
  created_by: string;
  created_at: string;
}
export type VisitEntryRow = Selectable<VisitEntriesTable>;

export interface VisitOutcomesTable {
  visit_id: string;
  item_kind: "task" | "medication";
  item_id: string;
  /** The local time it was due ("" for a task due at every visit). */
  due_time: string;
  title: string;
  outcome: Outcome;
  reason: string | null;
  recorded_at: string;
  recorded_by: string;
}
export type VisitOutcomeRow = Selectable<VisitOutcomesTable>;

export interface VisitCodesTable {
  id: string;
  visit_id: string;
  via: "device" | "family";
  code_hash: string;
  created_at: string;
  expires_at: string;
  confirmed_at: string | null;
  confirmed_by: string | null;
  failed_attempts: number;
  used_at: string | null;
}
export type VisitCodeRow = Selectable<VisitCodesTable>;

export type VisitTables = {
  visit_entries: VisitEntriesTable;
  visit_outcomes: VisitOutcomesTable;
  visit_codes: VisitCodesTable;
};
