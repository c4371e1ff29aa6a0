export interface CarePlanVersionsTable {
  resident_id: string;
  version: number;
  /** JSON of the CarePlan. */
  plan: string;
  /** JSON array of the top-level sections changed from the previous version. */
  changes: string;
  summary: string | null;
  created_by: string | null;
  created_at: string;
}
