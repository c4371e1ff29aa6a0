// Append-only audit trail: who did what to which record, and every read of health or access data.
// There is deliberately no update or delete here; the database refuses both as well.
import { iso } from "../clock";
import type { Executor } from "../db/database";
import { newId } from "../ids";

export interface AuditEntry {
  actorUserId: string | null;
  action: string;
  entityType: string;
  entityId?: string | null;
  residentId?: string | null;
  requestId?: string | null;
  /** Identifiers and field names only: never health text or secrets. */
  details?: Record<string, unknown>;
}

export async function recordAudit(db: Executor, entry: AuditEntry, now: Date): Promise<void> {
  await db
    .insertInto("audit_log")
    .values({
      id: newId(),
      at: iso(now),
      actor_user_id: entry.actorUserId,
      action: entry.action,
      entity_type: entry.entityType,
      entity_id: entry.entityId ?? null,
      resident_id: entry.residentId ?? null,
      request_id: entry.requestId ?? null,
      details: entry.details ? JSON.stringify(entry.details) : null,
    })
    .execute();
}

export interface AuditQuery {
  residentId?: string;
  actorUserId?: string;
  action?: string;
  from?: string;
  to?: string;
  limit: number;
  /** Opaque cursor: the id of the last entry of the previous page. */
  before?: string;
}

export async function queryAudit(db: Executor, q: AuditQuery) {
  let query = db.selectFrom("audit_log").selectAll();
  if (q.residentId) query = query.where("resident_id", "=", q.residentId);
  if (q.actorUserId) query = query.where("actor_user_id", "=", q.actorUserId);
  if (q.action) query = query.where("action", "=", q.action);
  if (q.from) query = query.where("at", ">=", q.from);
  if (q.to) query = query.where("at", "<", q.to);
  if (q.before) query = query.where("id", "<", q.before);
  const rows = await query
    .orderBy("id", "desc")
    .limit(q.limit + 1)
    .execute();
  const page = rows.slice(0, q.limit);
  return {
    items: page.map((r) => ({
      id: r.id,
      at: r.at,
      actorUserId: r.actor_user_id,
      action: r.action,
      entityType: r.entity_type,
      entityId: r.entity_id,
      residentId: r.resident_id,
      requestId: r.request_id,
      details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
    })),
    nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
  };
}
