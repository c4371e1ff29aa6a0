import type { Selectable } from "kysely";

export const residentStatuses = ["active", "paused", "archived"] as const;
export type ResidentStatus = (typeof residentStatuses)[number];

export interface ResidentsTable {
  id: string;
  user_id: string | null;
  full_name: string;
  preferred_name: string | null;
  date_of_birth: string;
  address_line1: string;
  address_line2: string | null;
  locality: string;
  region: string | null;
  postal_code: string | null;
  country: string;
  latitude: number;
  longitude: number;
  time_zone: string;
  language: string;
  phone: string | null;
  medical_notes: string | null;
  /** JSON array of strings. */
  allergies: string;
  access_notes: string | null;
  status: ResidentStatus;
  paused_from: string | null;
  paused_until: string | null;
  status_reason: string | null;
  confirmed_at: string | null;
  confirmed_by: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

export type ResidentRow = Selectable<ResidentsTable>;
