// Workers: real-name registration under a provider by its admin, verified or suspended by an
// operator. assignableWorker() is the one rule the visits code asks before assigning anyone.
import type { z } from "@hono/zod-openapi";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { isUniqueViolation } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { tellProvider } from "../notifications/audiences";
import { invitePhone } from "../notifications/notifications.service";
import type { RequestCtx } from "../request-ctx";
import { maskIdDocument, sealIdDocument } from "./id-documents";
import type {
  CertificateSchema,
  NewWorkerSchema,
  UpdateWorkerSchema,
  WorkerStatusChangeSchema,
} from "./providers.schemas";
import { authorizeProvider } from "./providers.service";
import type { WorkerCertificateRow, WorkerRow } from "./providers.table";

type Ctx = RequestCtx & { actor: Actor };

export function presentWorker(w: WorkerRow, certificates: WorkerCertificateRow[]) {
  return {
    id: w.id,
    providerId: w.provider_id,
    userId: w.user_id,
    legalName: w.legal_name,
    phone: w.phone,
    photoRef: w.photo_ref,
    idDocument: maskIdDocument(w.id_document_last4),
    skills: JSON.parse(w.skills) as string[],
    certificates: certificates.map((c) => ({
      name: c.name,
      skill: c.skill,
      expiresOn: c.expires_on,
    })),
    backgroundCheckedOn: w.background_checked_on,
    status: w.status,
    statusReason: w.status_reason,
    createdAt: w.created_at,
    updatedAt: w.updated_at,
  };
}

function audit(
  db: Executor,
  ctx: Ctx,
  action: string,
  workerId: string,
  details?: Record<string, unknown>,
) {
  return recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action,
      entityType: "worker",
      entityId: workerId,
      requestId: ctx.requestId,
      ...(details ? { details } : {}),
    },
    ctx.now,
  );
}

async function certificatesOf(db: Executor, workerIds: string[]) {
  const map = new Map<string, WorkerCertificateRow[]>();
  if (workerIds.length === 0) return map;
  const rows = await db
    .selectFrom("worker_certificates")
    .selectAll()
    .where("worker_id", "in", workerIds)
    .orderBy("skill")
    .orderBy("expires_on")
    .execute();
  for (const r of rows) map.set(r.worker_id, [...(map.get(r.worker_id) ?? []), r]);
  return map;
}

async function replaceCertificates(
  db: Executor,
  workerId: string,
  certificates: z.infer<typeof CertificateSchema>[],
  now: Date,
) {
  await db.deleteFrom("worker_certificates").where("worker_id", "=", workerId).execute();
  if (certificates.length === 0) return;
  await db
    .insertInto("worker_certificates")
    .values(
      certificates.map((c) => ({
        id: newId(),
        worker_id: workerId,
        name: c.name,
        skill: c.skill,
        expires_on: c.expiresOn,
        created_at: iso(now),
      })),
    )
    .execute();
}

/** A linked account must exist and hold the worker role. */
async function checkWorkerAccount(db: Executor, userId: string) {
  const role = await db
    .selectFrom("user_roles")
    .select("role")
    .where("user_id", "=", userId)
    .where("role", "=", "worker")
    .executeTakeFirst();
  if (!role) {
    throw new AppError("validation_failed", "the linked account must hold the worker role", {
      issues: [{ path: "userId", message: "not an account with the worker role" }],
    });
  }
}

const accountTaken = () =>
  new AppError("already_exists", "this account is already linked to another worker", {
    issues: [{ path: "userId", message: "already linked" }],
  });

async function loadWorker(db: Executor, workerId: string) {
  return db.selectFrom("workers").selectAll().where("id", "=", workerId).executeTakeFirst();
}

/** The worker, if the actor may `action` it: through its provider, or being that worker. */
async function authorizeWorker(
  db: Executor,
  actor: Actor,
  workerId: string,
  action: "view" | "manage" | "decide",
) {
  const worker = await loadWorker(db, workerId);
  if (!worker) throw notFound("the worker");
  if (action === "view" && worker.user_id === actor.userId) return worker;
  try {
    await authorizeProvider(
      db,
      actor,
      worker.provider_id,
      action === "view" ? "viewStaff" : action,
    );
  } catch (error) {
    if (error instanceof AppError && error.code === "not_found") throw notFound("the worker");
    throw error;
  }
  return worker;
}

export async function registerWorker(
  db: Db,
  ctx: Ctx,
  providerId: string,
  input: z.infer<typeof NewWorkerSchema>,
) {
  const id = newId();
  try {
    await db.transaction().execute(async (trx) => {
      await authorizeProvider(trx, ctx.actor, providerId, "manage");
      if (input.userId) await checkWorkerAccount(trx, input.userId);
      const sealed = await sealIdDocument(trx, id, input.idDocumentNumber);
      const now = iso(ctx.now);
      await trx
        .insertInto("workers")
        .values({
          id,
          provider_id: providerId,
          user_id: input.userId ?? null,
          legal_name: input.legalName,
          phone: input.phone,
          photo_ref: input.photoRef ?? null,
          id_document_cipher: sealed.cipher,
          id_document_last4: sealed.last4,
          skills: JSON.stringify([...new Set(input.skills)]),
          background_checked_on: input.backgroundCheckedOn ?? null,
          status: "pending",
          status_reason: null,
          status_changed_at: null,
          status_changed_by: null,
          created_by: ctx.actor.userId,
          created_at: now,
          updated_at: now,
        })
        .execute();
      await replaceCertificates(trx, id, input.certificates, ctx.now);
      await audit(trx, ctx, "worker.register", id, { providerId });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw accountTaken();
    throw error;
  }
  return getWorker(db, ctx, id);
}

export async function getWorker(db: Executor, ctx: Ctx, workerId: string) {
  const worker = await authorizeWorker(db, ctx.actor, workerId, "view");
  return presentWorker(worker, (await certificatesOf(db, [workerId])).get(workerId) ?? []);
}

export async function listWorkers(db: Executor, ctx: Ctx, providerId: string) {
  await authorizeProvider(db, ctx.actor, providerId, "viewStaff");
  const rows = await db
    .selectFrom("workers")
    .selectAll()
    .where("provider_id", "=", providerId)
    .orderBy("legal_name")
    .orderBy("id")
    .execute();
  const certificates = await certificatesOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => presentWorker(r, certificates.get(r.id) ?? []));
}

export async function updateWorker(
  db: Db,
  ctx: Ctx,
  workerId: string,
  patch: z.infer<typeof UpdateWorkerSchema>,
) {
  try {
    await db.transaction().execute(async (trx) => {
      await authorizeWorker(trx, ctx.actor, workerId, "manage");
      if (patch.userId) await checkWorkerAccount(trx, patch.userId);
      await trx
        .updateTable("workers")
        .set({
          phone: patch.phone,
          photo_ref: patch.photoRef,
          skills: patch.skills ? JSON.stringify([...new Set(patch.skills)]) : undefined,
          background_checked_on: patch.backgroundCheckedOn,
          user_id: patch.userId,
          updated_at: iso(ctx.now),
        })
        .where("id", "=", workerId)
        .execute();
      if (patch.certificates) await replaceCertificates(trx, workerId, patch.certificates, ctx.now);
      await audit(trx, ctx, "worker.update", workerId, { fields: Object.keys(patch) });
      if (patch.phone || patch.userId === null) await invitePhoneOfWorker(trx, workerId, ctx.now);
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw accountTaken();
    throw error;
  }
  return getWorker(db, ctx, workerId);
}

export async function changeWorkerStatus(
  db: Db,
  ctx: Ctx,
  workerId: string,
  change: z.infer<typeof WorkerStatusChangeSchema>,
) {
  await db.transaction().execute(async (trx) => {
    const worker = await authorizeWorker(trx, ctx.actor, workerId, "decide");
    if (worker.status === change.status)
      throw new AppError("invalid_state", `the worker is already ${change.status}`);
    await trx
      .updateTable("workers")
      .set({
        status: change.status,
        status_reason: change.reason ?? null,
        status_changed_at: iso(ctx.now),
        status_changed_by: ctx.actor.userId,
        updated_at: iso(ctx.now),
      })
      .where("id", "=", workerId)
      .execute();
    await audit(trx, ctx, `worker.${change.status}`, workerId, {
      from: worker.status,
      to: change.status,
      reason: change.reason ?? null,
    });
    if (change.status === "verified") await invitePhoneOfWorker(trx, workerId, ctx.now);
    if (change.status === "suspended") await unassignSuspended(trx, worker, ctx.now);
  });
  return getWorker(db, ctx, workerId);
}

/**
 * A suspended worker comes off every visit they have not started (and off their series); the
 * provider's admins are told how many visits need someone else.
 */
async function unassignSuspended(trx: Executor, worker: WorkerRow, now: Date) {
  const freed = await trx
    .updateTable("visits")
    .set({ worker_id: null, assigned_at: null, assigned_by: null, updated_at: iso(now) })
    .where("worker_id", "=", worker.id)
    .where("status", "=", "scheduled")
    .where("checked_in_at", "is", null)
    .executeTakeFirst();
  await trx
    .updateTable("bookings")
    .set({ worker_id: null, updated_at: iso(now) })
    .where("worker_id", "=", worker.id)
    .execute();
  const count = Number(freed.numUpdatedRows);
  if (count === 0) return;
  await tellProvider(
    trx,
    worker.provider_id,
    {
      purpose: "visits_unassigned",
      message: { t: "visits_unassigned", workerName: worker.legal_name, visits: count },
      dedupeKey: `visits-unassigned:${worker.id}:${iso(now)}`,
      channels: ["push", "sms"],
    },
    now,
  );
}

/**
 * A verified worker without an account is reached on their registered phone (visit alerts,
 * the day's reminder); alert texts need the number confirmed, so it is asked to reply once.
 */
async function invitePhoneOfWorker(trx: Executor, workerId: string, now: Date) {
  const w = await trx
    .selectFrom("workers")
    .innerJoin("providers", "providers.id", "workers.provider_id")
    .select([
      "workers.status",
      "workers.user_id",
      "workers.phone",
      "workers.legal_name",
      "providers.display_name",
    ])
    .where("workers.id", "=", workerId)
    .executeTakeFirst();
  if (w?.status !== "verified" || w.user_id) return;
  await invitePhone(
    trx,
    { phone: w.phone, name: w.legal_name, language: "en", timeZone: "UTC" },
    { t: "worker_invite", providerName: w.display_name },
    now,
  );
}

export type AssignmentRefusal =
  | "not_found"
  | "unverified"
  | "suspended"
  | "provider_not_verified"
  | "lacks_skill"
  | "certificate_expired";

export type Assignable =
  | { ok: true; workerId: string; providerId: string }
  | { ok: false; reason: AssignmentRefusal; message: string };

/** A date as YYYY-MM-DD in a time zone (certificates are valid through their expiry day). */
function localDate(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(at);
}

/**
 * Whether the worker may be assigned a visit needing `skill` at `at` (in the visit's time zone,
 * default UTC). A skill that certificates cover needs one valid on that day; a skill listed
 * without any certificate is enough by itself.
 */
export async function assignableWorker(
  db: Executor,
  workerId: string,
  need: { skill?: string | undefined; at: Date; timeZone?: string | undefined },
): Promise<Assignable> {
  const row = await db
    .selectFrom("workers")
    .innerJoin("providers", "providers.id", "workers.provider_id")
    .select([
      "workers.id",
      "workers.provider_id",
      "workers.status",
      "workers.skills",
      "providers.status as provider_status",
    ])
    .where("workers.id", "=", workerId)
    .executeTakeFirst();
  if (!row) return { ok: false, reason: "not_found", message: "no such worker" };
  if (row.provider_status !== "verified")
    return {
      ok: false,
      reason: "provider_not_verified",
      message: `the worker's provider is ${row.provider_status}`,
    };
  if (row.status === "suspended")
    return { ok: false, reason: "suspended", message: "the worker is suspended" };
  if (row.status !== "verified")
    return { ok: false, reason: "unverified", message: "the worker is not verified yet" };
  if (need.skill !== undefined) {
    const certificates = await db
      .selectFrom("worker_certificates")
      .select(["name", "expires_on"])
      .where("worker_id", "=", workerId)
      .where("skill", "=", need.skill)
      .execute();
    const day = localDate(need.at, need.timeZone ?? "UTC");
    if (certificates.length > 0) {
      if (!certificates.some((c) => c.expires_on >= day)) {
        const latest = certificates
          .map((c) => c.expires_on)
          .sort()
          .at(-1);
        return {
          ok: false,
          reason: "certificate_expired",
          message: `the certificate for ${need.skill} expired on ${latest}`,
        };
      }
    } else if (!(JSON.parse(row.skills) as string[]).includes(need.skill)) {
      return {
        ok: false,
        reason: "lacks_skill",
        message: `the worker does not offer ${need.skill}`,
      };
    }
  }
  return { ok: true, workerId: row.id, providerId: row.provider_id };
}
