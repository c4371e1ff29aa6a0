// Row types of the vitals feature. Readings themselves belong to devices (devices.table.ts).
import type { Executor } from "../db/database";

/** One resident's readings of one type in one UTC hour, kept after the raw rows are gone. */
export interface ReadingRollupsTable {
  resident_id: string;
  type: string;
  /** The UTC hour, as ISO-8601 text: 2026-11-22T09:00:00.000Z. */
  hour_start: string;
  unit: string;
  reading_count: number;
  value_sum: number;
  value_min: number;
  value_max: number;
}

/** The database as the vitals feature sees it: kincare's tables and the rollups. */
export function withRollups(db: Executor) {
  return db.withTables<{ reading_rollups: ReadingRollupsTable }>();
}
