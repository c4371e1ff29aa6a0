import type { Generated, Selectable } from "kysely";

export type JobStatus = "pending" | "running" | "done" | "dead";

export interface JobsTable {
  id: string;
  kind: string;
  /** JSON payload, checked by the job definition's schema when run. */
  payload: string;
  status: JobStatus;
  due_at: string;
  attempts: number;
  max_attempts: number;
  /** Fencing token: bumped at every claim; only the holder of the current value may finish the job. */
  fence: number;
  locked_by: string | null;
  locked_until: string | null;
  dedupe_key: string | null;
  /** Higher runs first among due jobs (an SOS step before a rollup); see JOB_PRIORITY. */
  priority: Generated<number>;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export type JobRow = Selectable<JobsTable>;
