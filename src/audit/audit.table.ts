export interface AuditLogTable {
  id: string;
  at: string;
  actor_user_id: string | null;
  action: string;
  entity_type: string;
  entity_id: string | null;
  resident_id: string | null;
  request_id: string | null;
  /** JSON object; never health text or secrets. */
  details: string | null;
}
