// Versioned care plans: every change is a new version recording who changed which sections.
import { isDeepStrictEqual } from "node:util";
import { authorizeResident } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import { type Db, type Executor, isUniqueViolation } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import type { RequestCtx } from "../request-ctx";
import { type CarePlan, CarePlanSchema, defaultCarePlan } from "./careplans.schemas";

type Ctx = RequestCtx & { actor: Actor };

export function changedSections(before: CarePlan | null, after: CarePlan): string[] {
  if (!before) return Object.keys(after);
  return (Object.keys(after) as (keyof CarePlan)[]).filter(
    (k) => !isDeepStrictEqual(before[k], after[k]),
  );
}

async function insertVersion(
  db: Executor,
  residentId: string,
  version: number,
  plan: CarePlan,
  changes: string[],
  summary: string | null,
  by: string | null,
  now: Date,
) {
  await db
    .insertInto("care_plan_versions")
    .values({
      resident_id: residentId,
      version,
      plan: JSON.stringify(plan),
      changes: JSON.stringify(changes),
      summary,
      created_by: by,
      created_at: iso(now),
    })
    .execute();
}

/** Version 1 for a new resident: the defaults, plus whoever registered them as first contact. */
export async function createInitialPlan(
  db: Executor,
  residentId: string,
  by: string | null,
  now: Date,
  firstContact?: string,
) {
  const plan = defaultCarePlan();
  if (firstContact) plan.emergencyContacts = [{ kind: "member", userId: firstContact }];
  await insertVersion(db, residentId, 1, plan, [], "default plan", by, now);
}

async function loadVersions(db: Executor, residentId: string, version?: number) {
  let q = db
    .selectFrom("care_plan_versions as v")
    .leftJoin("users as u", "u.id", "v.created_by")
    .select([
      "v.resident_id",
      "v.version",
      "v.plan",
      "v.changes",
      "v.summary",
      "v.created_at",
      "v.created_by",
      "u.display_name",
    ])
    .where("v.resident_id", "=", residentId);
  if (version !== undefined) q = q.where("v.version", "=", version);
  const rows = await q.orderBy("v.version", "desc").execute();
  return rows.map((r) => ({
    residentId: r.resident_id,
    version: r.version,
    // Parsed through the schema so a plan written by an older version gains new defaults.
    plan: CarePlanSchema.parse(JSON.parse(r.plan)),
    summary: r.summary,
    changes: JSON.parse(r.changes) as string[],
    createdAt: r.created_at,
    createdBy: r.created_by ? { id: r.created_by, displayName: r.display_name ?? "" } : null,
  }));
}

export async function currentPlan(db: Executor, residentId: string) {
  const latest = await db
    .selectFrom("care_plan_versions")
    .select((eb) => eb.fn.max("version").as("version"))
    .where("resident_id", "=", residentId)
    .executeTakeFirst();
  if (latest?.version === null || latest?.version === undefined) throw notFound("the care plan");
  const [version] = await loadVersions(db, residentId, Number(latest.version));
  return version!;
}

/** One version of a resident's plan (a visit keeps the version it was checked in under). */
export async function planVersion(db: Executor, residentId: string, version: number) {
  const [found] = await loadVersions(db, residentId, version);
  if (!found) throw notFound("the care plan version");
  return found;
}

export async function readCurrentPlan(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "readCarePlan");
  const plan = await currentPlan(db, residentId);
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action: "careplan.read",
      entityType: "care_plan",
      entityId: residentId,
      residentId,
      requestId: ctx.requestId,
      details: { version: plan.version },
    },
    ctx.now,
  );
  return plan;
}

export async function readPlanVersion(db: Executor, ctx: Ctx, residentId: string, version: number) {
  await authorizeResident(db, ctx.actor, residentId, "readCarePlan");
  const [found] = await loadVersions(db, residentId, version);
  if (!found) throw notFound(`version ${version} of the care plan`);
  await recordAudit(
    db,
    {
      actorUserId: ctx.actor.userId,
      action: "careplan.read",
      entityType: "care_plan",
      entityId: residentId,
      residentId,
      requestId: ctx.requestId,
      details: { version },
    },
    ctx.now,
  );
  return found;
}

/** The history: who changed which sections, when, and why; without the plans themselves. */
export async function planHistory(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "readCarePlan");
  const rows = await db
    .selectFrom("care_plan_versions as v")
    .leftJoin("users as u", "u.id", "v.created_by")
    .select([
      "v.version",
      "v.changes",
      "v.summary",
      "v.created_at",
      "v.created_by",
      "u.display_name",
    ])
    .where("v.resident_id", "=", residentId)
    .orderBy("v.version", "desc")
    .execute();
  return rows.map((r) => ({
    version: r.version,
    changes: JSON.parse(r.changes) as string[],
    summary: r.summary,
    createdAt: r.created_at,
    createdBy: r.created_by ? { id: r.created_by, displayName: r.display_name ?? "" } : null,
  }));
}

export async function updatePlan(
  db: Db,
  ctx: Ctx,
  residentId: string,
  input: { baseVersion: number; plan: CarePlan; summary?: string | undefined },
) {
  try {
    return await writePlan(db, ctx, residentId, input);
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    throw new AppError(
      "version_conflict",
      "someone saved the care plan at the same moment: reload and apply your change again",
    );
  }
}

function writePlan(
  db: Db,
  ctx: Ctx,
  residentId: string,
  input: { baseVersion: number; plan: CarePlan; summary?: string | undefined },
) {
  return db.transaction().execute(async (trx) => {
    await authorizeResident(trx, ctx.actor, residentId, "writeCarePlan");
    const current = await currentPlan(trx, residentId);
    if (input.baseVersion !== current.version) {
      throw new AppError(
        "version_conflict",
        `the care plan changed since you opened it (you edited version ${input.baseVersion}, the current is ${current.version}): reload and apply your change again`,
        { currentVersion: current.version },
      );
    }
    await checkContacts(trx, residentId, input.plan);
    const changes = changedSections(current.plan, input.plan);
    if (changes.length === 0) return current;
    const version = current.version + 1;
    // The primary key (resident, version) makes a concurrent second writer fail rather than fork history.
    await insertVersion(
      trx,
      residentId,
      version,
      input.plan,
      changes,
      input.summary ?? null,
      ctx.actor.userId,
      ctx.now,
    );
    await recordAudit(
      trx,
      {
        actorUserId: ctx.actor.userId,
        action: "careplan.update",
        entityType: "care_plan",
        entityId: residentId,
        residentId,
        requestId: ctx.requestId,
        details: { version, changes },
      },
      ctx.now,
    );
    const [saved] = await loadVersions(trx, residentId, version);
    return saved!;
  });
}

async function checkContacts(db: Executor, residentId: string, plan: CarePlan) {
  const memberIds = plan.emergencyContacts.flatMap((c) => (c.kind === "member" ? [c.userId] : []));
  if (memberIds.length === 0) return;
  const found = await db
    .selectFrom("circle_members")
    .select("user_id")
    .where("resident_id", "=", residentId)
    .where("user_id", "in", memberIds)
    .execute();
  const inCircle = new Set(found.map((r) => r.user_id));
  const issues = plan.emergencyContacts.flatMap((c, i) =>
    c.kind === "member" && !inCircle.has(c.userId)
      ? [
          {
            path: `plan.emergencyContacts.${i}.userId`,
            message: "not a member of this resident's family circle",
          },
        ]
      : [],
  );
  if (issues.length > 0) {
    throw new AppError("validation_failed", "an emergency contact is not in the family circle", {
      issues,
    });
  }
}
