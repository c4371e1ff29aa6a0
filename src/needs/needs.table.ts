// Row types of needs and offers (see migrations/2026-11-22T1100-needs.ts).
import type { Selectable } from "kysely";

export type NeedStatus = "open" | "accepted" | "expired" | "closed";
export type OfferStatus = "pending" | "accepted" | "declined";

export interface NeedsTable {
  id: string;
  resident_id: string;
  posted_by: string;
  category: string;
  description: string;
  wanted_date: string;
  wanted_time: string | null;
  budget_minor: number | null;
  currency: string;
  expires_at: string;
  status: NeedStatus;
  accepted_offer_id: string | null;
  booking_id: string | null;
  created_at: string;
  updated_at: string;
}
export type NeedRow = Selectable<NeedsTable>;

export interface OffersTable {
  id: string;
  need_id: string;
  provider_id: string;
  service_id: string;
  price_minor: number;
  visit_date: string;
  visit_time: string;
  message: string;
  status: OfferStatus;
  created_by: string;
  created_at: string;
  decided_at: string | null;
}
export type OfferRow = Selectable<OffersTable>;

/** Merged into the Database type in src/db/schema.ts. */
export type NeedTables = { needs: NeedsTable; offers: OffersTable };
