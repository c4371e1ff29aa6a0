// Row types of bookings and visits (see migrations/2026-11-22T1000-bookings.ts).
import type { Selectable } from "kysely";

export type BookingStatus = "pending" | "accepted" | "declined" | "cancelled";
/**
 * scheduled: money in escrow, the visit ahead · verified: done and proven, the family's review
 * window runs · disputed: the money frozen until an operator decides · released: paid to the
 * provider · refunded / cancelled: the money went back (a late cancel pays the provider a fee).
 */
export type VisitStatus =
  | "scheduled"
  | "verified"
  | "disputed"
  | "released"
  | "refunded"
  | "cancelled";

export interface BookingsTable {
  id: string;
  resident_id: string;
  service_id: string;
  provider_id: string;
  booked_by: string;
  status: BookingStatus;
  /** JSON: { type: "once", date, time } or { type: "weekly", days, time, weeks?, until? }. */
  schedule: string;
  time_zone: string;
  visit_price_minor: number;
  currency: string;
  duration_minutes: number;
  notes: string | null;
  accept_by: string;
  decided_at: string | null;
  decided_by: string | null;
  decline_reason: string | null;
  /** The last local date whose visits exist (a series rolls forward). */
  generated_through: string | null;
  /** The worker assigned to the whole series: visits rolled forward later get them when free. */
  worker_id: string | null;
  created_at: string;
  updated_at: string;
}
export type BookingRow = Selectable<BookingsTable>;

export interface VisitsTable {
  id: string;
  booking_id: string;
  resident_id: string;
  provider_id: string;
  service_id: string;
  worker_id: string | null;
  starts_at: string;
  ends_at: string;
  local_date: string;
  local_time: string;
  status: VisitStatus;
  price_minor: number;
  currency: string;
  verified_at: string | null;
  review_until: string | null;
  dispute_reason: string | null;
  settled_at: string | null;
  cancelled_at: string | null;
  cancelled_by: string | null;
  cancel_reason: string | null;
  created_at: string;
  updated_at: string;
  assigned_at: string | null;
  assigned_by: string | null;
  /** The care-plan version whose tasks and medications the visit carries (set at check-in). */
  plan_version: number | null;
  checked_in_at: string | null;
  checked_out_at: string | null;
  /** The visit watch's marks: late at start + 15 min, missed at start + 30, open at end + 2 h. */
  late_at: string | null;
  missed_at: string | null;
  open_alerted_at: string | null;
}
export type VisitRow = Selectable<VisitsTable>;

export type BookingTables = { bookings: BookingsTable; visits: VisitsTable };
