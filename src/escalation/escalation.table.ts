import type { Generated } from "kysely";

export interface EscalationPoliciesTable {
  resident_id: string;
  /** JSON, an EscalationPolicy. */
  policy: string;
  updated_at: string;
  updated_by: string | null;
}

export interface DeskDutyTable {
  user_id: string;
  since: string;
}

export interface AlertFeedTable {
  seq: Generated<number>;
  alert_id: string;
  resident_id: string;
  type: string;
  at: string;
}
