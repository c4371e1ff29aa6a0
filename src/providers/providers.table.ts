// Row types of the providers, workers and catalog tables (see migrations/2026-11-22T0800-providers.ts).
import type { Generated, Selectable } from "kysely";

export const providerCategories = [
  "personal_care",
  "nursing",
  "cleaning",
  "meals",
  "companionship",
  "escort",
  "home_repair",
] as const;
export type ProviderCategory = (typeof providerCategories)[number];

export const providerStatuses = ["pending", "verified", "rejected", "suspended"] as const;
export type ProviderStatus = (typeof providerStatuses)[number];

export interface ProvidersTable {
  id: string;
  legal_name: string;
  display_name: string;
  licence_number: string;
  /** JSON array of ProviderCategory. */
  categories: string;
  centre_latitude: number | null;
  centre_longitude: number | null;
  radius_km: number | null;
  contact_email: string;
  contact_phone: string;
  on_call_name: string;
  on_call_phone: string;
  status: ProviderStatus;
  status_reason: string | null;
  status_changed_at: string | null;
  status_changed_by: string | null;
  rating_sum: Generated<number>;
  rating_count: Generated<number>;
  no_show_count: Generated<number>;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}
export type ProviderRow = Selectable<ProvidersTable>;

export interface ProviderLocalitiesTable {
  /** The locality trimmed and lower-cased, as residents' localities are matched. */
  locality_key: string;
  provider_id: string;
  locality: string;
}

export interface ProviderAdminsTable {
  provider_id: string;
  user_id: string;
  added_by: string | null;
  created_at: string;
}

export const workerStatuses = ["pending", "verified", "suspended"] as const;
export type WorkerStatus = (typeof workerStatuses)[number];

export interface WorkersTable {
  id: string;
  provider_id: string;
  user_id: string | null;
  legal_name: string;
  phone: string;
  photo_ref: string | null;
  id_document_cipher: string;
  id_document_last4: string;
  /** JSON array of skill names. */
  skills: string;
  background_checked_on: string | null;
  status: WorkerStatus;
  status_reason: string | null;
  status_changed_at: string | null;
  status_changed_by: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}
export type WorkerRow = Selectable<WorkersTable>;

export interface WorkerCertificatesTable {
  id: string;
  worker_id: string;
  name: string;
  skill: string;
  /** Local date YYYY-MM-DD: valid through this day. */
  expires_on: string;
  created_at: string;
}
export type WorkerCertificateRow = Selectable<WorkerCertificatesTable>;

export const serviceUnits = ["per_visit", "per_hour", "per_meal"] as const;
export type ServiceUnit = (typeof serviceUnits)[number];

export interface ServicesTable {
  id: string;
  provider_id: string;
  search_rowid: number | null;
  title: string;
  category: ProviderCategory;
  description: string;
  price_minor: number;
  currency: string;
  unit: ServiceUnit;
  duration_minutes: number;
  min_notice_hours: number;
  /** JSON array of { day, start, end } weekly windows in the resident's local time. */
  availability: string;
  /** 1 or 0 (portable across both databases). */
  active: number;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}
export type ServiceRow = Selectable<ServicesTable>;

/** The provider tables, merged into the Database interface in src/db/schema.ts. */
export type ProviderTables = {
  providers: ProvidersTable;
  provider_localities: ProviderLocalitiesTable;
  provider_admins: ProviderAdminsTable;
  workers: WorkersTable;
  worker_certificates: WorkerCertificatesTable;
  services: ServicesTable;
};
