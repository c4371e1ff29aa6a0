// How urgent a job is, from the severity of the alert it serves.
import { JOB_PRIORITY } from "../jobs/jobs.repository";

/** An SOS, a fall, a critical vital: urgent; warnings: high; the rest: normal. */
export function priorityOf(severity: string | null | undefined): number {
  if (severity === "critical") return JOB_PRIORITY.urgent;
  if (severity === "warning") return JOB_PRIORITY.high;
  return JOB_PRIORITY.normal;
}
