// Row types of reviews and promotions (see migrations/2026-11-22T1200-reviews.ts).
import type { Selectable } from "kysely";

export interface ReviewsTable {
  id: string;
  visit_id: string;
  resident_id: string;
  provider_id: string;
  service_id: string;
  worker_id: string | null;
  author_id: string;
  /** 1 to 5. */
  provider_rating: number;
  /** 1 to 5, when the visit had a worker and the family rated them. */
  worker_rating: number | null;
  comment: string | null;
  reply: string | null;
  replied_at: string | null;
  replied_by: string | null;
  /** Set by an operator: the review leaves public lists and averages, the row stays. */
  hidden_at: string | null;
  hidden_by: string | null;
  hidden_reason: string | null;
  created_at: string;
  updated_at: string;
}
export type ReviewRow = Selectable<ReviewsTable>;

export interface WorkerRatingsTable {
  worker_id: string;
  rating_sum: number;
  rating_count: number;
  updated_at: string;
}

export type PromotionStatus = "proposed" | "approved" | "rejected";

export interface PromotionsTable {
  id: string;
  provider_id: string;
  title: string;
  /** Exactly one of percent_off (1 to 90) and amount_off_minor is set. */
  percent_off: number | null;
  amount_off_minor: number | null;
  currency: string;
  /** Local dates YYYY-MM-DD, both inclusive: the visit's local date must fall between them. */
  starts_on: string;
  ends_on: string;
  status: PromotionStatus;
  proposed_by: string;
  decided_by: string | null;
  decided_at: string | null;
  decision_reason: string | null;
  created_at: string;
  updated_at: string;
}
export type PromotionRow = Selectable<PromotionsTable>;

export interface PromotionServicesTable {
  promotion_id: string;
  service_id: string;
}

export interface BookingPromotionsTable {
  booking_id: string;
  promotion_id: string;
  full_price_minor: number;
  discount_minor: number;
  /** How the statement names it, e.g. "20% off (Spring offer)". */
  label: string;
  created_at: string;
}

/** Merged into the Database type in src/db/schema.ts. */
export type ReviewTables = {
  reviews: ReviewsTable;
  worker_ratings: WorkerRatingsTable;
  promotions: PromotionsTable;
  promotion_services: PromotionServicesTable;
  booking_promotions: BookingPromotionsTable;
};
