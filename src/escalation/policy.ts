// Escalation policies: who is reached, on which channels, and how long kincare waits before the
// next tier. Each resident has one; until a primary or an operator edits it, it follows the care
// plan's emergency contacts. The chain is copied onto each alert when it is raised.
import { z } from "@hono/zod-openapi";
import { authorizeResident } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import { currentPlan } from "../careplans/careplans.service";
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError } from "../errors";
import type { Actor } from "../http/context";
import { channels } from "../notifications/notifications.table";
import type { RequestCtx } from "../request-ctx";
import { Phone } from "../validation";

export const RecipientSchema = z
  .discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("member"), userId: z.string().min(1).max(64) }),
    z.strictObject({
      kind: z.literal("phone"),
      phone: Phone,
      name: z.string().trim().min(1).max(120),
    }),
    z.strictObject({ kind: z.literal("primaries") }),
    z.strictObject({ kind: z.literal("visit_workers") }),
    z.strictObject({ kind: z.literal("provider_on_call") }),
    z.strictObject({ kind: z.literal("desk") }),
  ])
  .openapi("EscalationRecipient", {
    description:
      "A circle member, a phone number (a neighbour), the circle's primaries, the workers with a " +
      "visit at the resident today, the provider's on-call person, or the operators on duty",
  });
export type Recipient = z.infer<typeof RecipientSchema>;

export const TierSchema = z
  .strictObject({
    recipients: z.array(RecipientSchema).min(1).max(20),
    channels: z.array(z.enum(channels)).min(1).max(2),
    waitMinutes: z.number().min(0.25).max(240).multipleOf(0.25).openapi({
      description:
        "How long kincare waits for an acknowledgement before the next tier (minutes, in quarters: 0.5 is 30 s)",
    }),
  })
  .openapi("EscalationTier");
export type Tier = z.infer<typeof TierSchema>;

export const PolicySchema = z
  .strictObject({
    tiers: z.array(TierSchema).min(1).max(10),
    repeatEveryMinutes: z.number().min(0.25).max(240).multipleOf(0.25).openapi({
      description: "After the last tier, it repeats this often until someone acknowledges",
    }),
    repeatLimit: z.number().int().min(0).max(100),
  })
  .openapi("EscalationPolicy");
export type EscalationPolicy = z.infer<typeof PolicySchema>;

type Ctx = RequestCtx & { actor: Actor };

/**
 * The default chain: the first emergency contact (or the primaries) with today's workers, then
 * the other contacts with the provider's on-call person, then the operator desk, repeating.
 */
export async function defaultPolicy(db: Executor, residentId: string): Promise<EscalationPolicy> {
  const plan = await currentPlan(db, residentId).catch(() => null);
  const contacts: Recipient[] = (plan?.plan.emergencyContacts ?? []).map((c) =>
    c.kind === "member"
      ? { kind: "member", userId: c.userId }
      : { kind: "phone", phone: c.phone, name: c.name },
  );
  const [first, ...rest] = contacts;
  const both = ["push", "sms"] as const;
  return {
    tiers: [
      {
        recipients: [first ?? { kind: "primaries" }, { kind: "visit_workers" }],
        channels: [...both],
        waitMinutes: 3,
      },
      {
        recipients: [...(rest.length > 0 ? rest : [{ kind: "primaries" } as const])].concat([
          { kind: "provider_on_call" },
        ]),
        channels: [...both],
        waitMinutes: 5,
      },
      { recipients: [{ kind: "desk" }], channels: [...both], waitMinutes: 5 },
    ],
    repeatEveryMinutes: 5,
    repeatLimit: 6,
  };
}

export async function policyFor(db: Executor, residentId: string) {
  const row = await db
    .selectFrom("escalation_policies")
    .select(["policy", "updated_at", "updated_by"])
    .where("resident_id", "=", residentId)
    .executeTakeFirst();
  if (row) {
    const parsed = PolicySchema.safeParse(JSON.parse(row.policy));
    if (parsed.success) {
      return { policy: parsed.data, custom: true, updatedAt: row.updated_at };
    }
  }
  return { policy: await defaultPolicy(db, residentId), custom: false, updatedAt: null };
}

export async function readPolicy(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "viewAlerts");
  return policyFor(db, residentId);
}

/** Members named in a policy must belong to the resident's circle: no paging strangers. */
async function checkMembers(db: Executor, residentId: string, policy: EscalationPolicy) {
  const ids = policy.tiers.flatMap((t) =>
    t.recipients.flatMap((r) => (r.kind === "member" ? [r.userId] : [])),
  );
  if (ids.length === 0) return;
  const found = await db
    .selectFrom("circle_members")
    .select("user_id")
    .where("resident_id", "=", residentId)
    .where("user_id", "in", ids)
    .execute();
  const known = new Set(found.map((f) => f.user_id));
  const missing = [...new Set(ids)].filter((id) => !known.has(id));
  if (missing.length > 0) {
    throw new AppError(
      "validation_failed",
      "every member named in the policy must be in the resident's family circle",
      { fields: missing.map((m) => ({ path: "tiers", message: `${m} is not in the circle` })) },
    );
  }
}

export async function writePolicy(
  db: Db,
  ctx: Ctx,
  residentId: string,
  policy: EscalationPolicy | null,
) {
  await db.transaction().execute(async (trx) => {
    await authorizeResident(trx, ctx.actor, residentId, "manageEscalation");
    if (policy === null) {
      await trx.deleteFrom("escalation_policies").where("resident_id", "=", residentId).execute();
    } else {
      await checkMembers(trx, residentId, policy);
      const row = {
        resident_id: residentId,
        policy: JSON.stringify(policy),
        updated_at: iso(ctx.now),
        updated_by: ctx.actor.userId,
      };
      await trx
        .insertInto("escalation_policies")
        .values(row)
        .onConflict((oc) =>
          oc.column("resident_id").doUpdateSet({
            policy: row.policy,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
          }),
        )
        .execute();
    }
    await recordAudit(
      trx,
      {
        actorUserId: ctx.actor.userId,
        action: policy ? "escalation.policy.update" : "escalation.policy.reset",
        entityType: "resident",
        entityId: residentId,
        residentId,
        requestId: ctx.requestId,
      },
      ctx.now,
    );
  });
  return policyFor(db, residentId);
}
