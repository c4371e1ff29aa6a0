// Migrations listed in a static map (not a directory scan), applied in name order.
import type { Migration } from "kysely";
import * as foundation from "./2026-11-22T0300-foundation";
import * as devices from "./2026-11-22T0400-devices";
import * as vitals from "./2026-11-22T0500-vitals";
import * as activity from "./2026-11-22T0600-activity";
import * as escalation from "./2026-11-22T0700-escalation";
import * as providers from "./2026-11-22T0800-providers";
import * as ledger from "./2026-11-22T0900-ledger";
import * as bookings from "./2026-11-22T1000-bookings";
import * as needs from "./2026-11-22T1100-needs";
import * as reviews from "./2026-11-22T1200-reviews";
import * as jobPriority from "./2026-11-22T1300-job-priority";
import * as careVisits from "./2026-12-03T1400-care-visits";

export const migrations: Record<string, Migration> = {
  "2026-11-22T0300-foundation": foundation,
  "2026-11-22T0400-devices": devices,
  "2026-11-22T0500-vitals": vitals,
  "2026-11-22T0600-activity": activity,
  "2026-11-22T0700-escalation": escalation,
  "2026-11-22T0800-providers": providers,
  "2026-11-22T0900-ledger": ledger,
  "2026-11-22T1000-bookings": bookings,
  "2026-11-22T1100-needs": needs,
  "2026-11-22T1200-reviews": reviews,
  "2026-11-22T1300-job-priority": jobPriority,
  "2026-12-03T1400-care-visits": careVisits,
};
