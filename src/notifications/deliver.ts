// Sends one delivery row, as a durable job: claim it (fenced by the job's run), send it over its
// channel, write the outcome. A row claimed by a run that died mid-send is "in doubt": for a
// critical alert it is sent again and marked on the timeline (at-least-once, never silently
// dropped); anything else is marked failed rather than risk a duplicate.
import { z } from "zod";
import { addTimeline } from "../alerts/timeline";
import { iso } from "../clock";
import type { Executor } from "../db/database";
import type { AckLinks } from "../escalation/ack-links";
import type { JobContext, Scheduler } from "../jobs/scheduler";
import { getSettings, type Settings } from "../settings/settings.service";
import { type PushChannel, SendError, type SmsChannel } from "./channels";
import type { DeliveryRow, DeliveryStatus, PushSubscriptionRow } from "./notifications.table";
import { BUNDLE_JOB, DELIVER_JOB, personForPhone, personForUser, queueMessage } from "./queue";
import { type AlertFacts, languageOf, MessageSchema, type Rendered, render } from "./templates";

export interface DeliveryDeps {
  sms: SmsChannel;
  push: PushChannel;
  links: AckLinks;
  publicUrl: string;
  /** Called when a failure means the next escalation step should run now. */
  onEscalateNow(): void;
}

const MAX_ATTEMPTS = 6;

export function registerDeliveryJobs(scheduler: Scheduler, deps: DeliveryDeps) {
  scheduler.define({
    kind: DELIVER_JOB,
    payload: z.object({ deliveryId: z.string() }),
    maxAttempts: MAX_ATTEMPTS,
    // A dropped connection is retried almost at once; a service in trouble, less and less often.
    backoffMs: (attempt) => Math.min(250 * 4 ** (attempt - 1), 60_000),
    leaseMs: 30_000,
    handler: (ctx, { deliveryId }) => deliver(ctx, deps, deliveryId),
  });
  scheduler.define({
    kind: BUNDLE_JOB,
    payload: z.object({ personKey: z.string() }),
    maxAttempts: 10,
    handler: (ctx, { personKey }) => sendBundle(ctx, personKey),
  });
}

async function setStatus(
  db: Executor,
  id: string,
  status: DeliveryStatus,
  now: Date,
  extra: Partial<
    Pick<DeliveryRow, "provider_ref" | "error_code" | "error_reason" | "sent_at">
  > = {},
) {
  await db
    .updateTable("deliveries")
    .set({ status, updated_at: iso(now), ...extra })
    .where("id", "=", id)
    .execute();
}

/** The send's own outcome; a status callback that came first (delivered) is not overwritten. */
async function recordSent(
  db: Executor,
  id: string,
  status: DeliveryStatus,
  now: Date,
  ref: string | null,
) {
  await db
    .updateTable("deliveries")
    .set({ provider_ref: ref, sent_at: iso(now), error_reason: null, updated_at: iso(now) })
    .where("id", "=", id)
    .execute();
  await db
    .updateTable("deliveries")
    .set({ status })
    .where("id", "=", id)
    .where("status", "in", ["sending", "retrying"])
    .execute();
}

/** Takes the row for this run; null when there is nothing to send (sent, cancelled, stale). */
async function claim(db: Executor, ctx: JobContext, id: string): Promise<DeliveryRow | null> {
  const now = ctx.clock.now();
  const claimed = await db
    .updateTable("deliveries")
    .set((eb) => ({
      status: "sending",
      claim_fence: ctx.fence,
      attempts: eb("attempts", "+", 1),
      updated_at: iso(now),
    }))
    .where("id", "=", id)
    .where("status", "in", ["pending", "retrying"])
    // An escalation step's message leaves only while its alert still waits for a person.
    .where((eb) =>
      eb.or([
        eb("purpose", "!=", "alert_step"),
        eb("alert_id", "in", eb.selectFrom("alerts").select("id").where("status", "=", "open")),
      ]),
    )
    .returningAll()
    .executeTakeFirst();
  if (claimed) return claimed;
  const row = await db.selectFrom("deliveries").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) return null;
  if (row.status === "pending" || row.status === "retrying") {
    await setStatus(db, id, "cancelled", now, {
      error_reason: "someone took charge of the alert before this left",
    });
    return null;
  }
  if (row.status !== "sending" || (row.claim_fence ?? 0) >= ctx.fence) return null;
  // The run that claimed it died between claim and outcome: the send may or may not have left.
  if (row.severity === "critical") {
    await db
      .updateTable("deliveries")
      .set((eb) => ({
        claim_fence: ctx.fence,
        attempts: eb("attempts", "+", 1),
        updated_at: iso(now),
      }))
      .where("id", "=", id)
      .execute();
    if (row.alert_id) {
      await addTimeline(db, row.alert_id, now, "notification_in_doubt", null, {
        deliveryId: id,
        channel: row.channel,
        recipient: row.recipient_name,
        reason: "kincare stopped while this was being sent; it is sent again, it may arrive twice",
      });
    }
    return { ...row, claim_fence: ctx.fence };
  }
  await setStatus(db, id, "failed", now, {
    error_code: "in_doubt",
    error_reason: "kincare stopped while this was being sent; not repeated",
  });
  return null;
}

async function alertFacts(db: Executor, ids: string[]): Promise<Map<string, AlertFacts>> {
  const facts = new Map<string, AlertFacts>();
  if (ids.length === 0) return facts;
  const rows = await db
    .selectFrom("alerts as a")
    .innerJoin("residents as r", "r.id", "a.resident_id")
    .select([
      "a.id",
      "a.kind",
      "a.severity",
      "a.opened_at",
      "a.code",
      "a.details",
      "r.full_name",
      "r.preferred_name",
    ])
    .where("a.id", "in", ids)
    .execute();
  for (const r of rows) {
    facts.set(r.id, {
      id: r.id,
      kind: r.kind,
      severity: r.severity,
      residentName: r.preferred_name ?? r.full_name,
      openedAt: r.opened_at,
      code: r.code,
      details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
    });
  }
  return facts;
}

function alertIdsOf(message: ReturnType<typeof MessageSchema.parse>): string[] {
  if ("alertId" in message) return [message.alertId];
  if ("alertIds" in message) return message.alertIds;
  return [];
}

async function renderRow(db: Executor, deps: DeliveryDeps, row: DeliveryRow, now: Date) {
  const stored = JSON.parse(row.message) as Record<string, unknown>;
  const message = MessageSchema.parse(stored);
  const language = languageOf(stored.language as string | undefined);
  const timeZone = typeof stored.timeZone === "string" ? stored.timeZone : "UTC";
  const alerts = await alertFacts(db, alertIdsOf(message));
  const alertId = "alertId" in message ? message.alertId : undefined;
  const link =
    alertId &&
    (message.t === "alert" || message.t === "alert_repeat" || message.t === "desk_handover")
      ? deps.links.url({ alertId, userId: row.user_id, phone: row.phone }, now)
      : undefined;
  const rendered: Rendered = render({ message, language, timeZone, alerts, link });
  return {
    rendered,
    link,
    quiet: stored.quiet === true,
    facts: alertId ? alerts.get(alertId) : undefined,
  };
}

/**
 * Two short transactions around the send, none during it: claim and prepare everything the send
 * needs; then write the outcome, the timeline and the job's completion together. (On SQLite each
 * transaction waits for the one connection, which device ingest also uses.)
 */
async function deliver(ctx: JobContext, deps: DeliveryDeps, id: string) {
  const now = ctx.clock.now();
  const prep = await ctx.db.transaction().execute(async (trx) => {
    const row = await claim(trx, ctx, id);
    if (!row) return null;
    const settings = await getSettings(trx);
    const rendered = await renderRow(trx, deps, row, now);
    const sub =
      row.channel === "push"
        ? await trx
            .selectFrom("push_subscriptions")
            .selectAll()
            .where("id", "=", row.subscription_id ?? "")
            .executeTakeFirst()
        : undefined;
    return { row, settings, ...rendered, sub };
  });
  if (!prep) return;
  const { row, settings, rendered, link, quiet, facts, sub } = prep;
  let outcome: { status: DeliveryStatus; ref: string | null };
  try {
    if (row.channel === "push") {
      await sendPush(deps, row, sub, rendered, { link, quiet, facts, settings });
      outcome = { status: "sent", ref: null };
    } else if (!deps.sms.enabled) {
      outcome = { status: "outbox", ref: null };
    } else {
      const sent = await deps.sms.send({
        to: row.phone!,
        body: rendered.sms,
        statusCallback: `${deps.publicUrl}/v1/webhooks/twilio/status/${id}`,
        validitySeconds: settings["notifications.sms_validity_s"],
      });
      const queued = sent.status === "queued" || sent.status === "accepted";
      outcome = { status: queued ? "queued" : "sent", ref: sent.sid };
    }
  } catch (error) {
    if (!(error instanceof SendError)) throw error;
    await failed(ctx, deps, row, error);
    return;
  }
  const done = ctx.clock.now();
  await ctx.db.transaction().execute(async (trx) => {
    if (outcome.status === "outbox") {
      await trx
        .insertInto("sms_outbox")
        .values({
          id,
          delivery_id: id,
          to_phone: row.phone!,
          body: rendered.sms,
          created_at: iso(now),
        })
        .onConflict((oc) => oc.column("id").doNothing())
        .execute();
      await setStatus(trx, id, "outbox", now, {
        error_reason: "SMS is not configured: the text is in the outbox for operators",
      });
    } else {
      await recordSent(trx, id, outcome.status, done, outcome.ref);
    }
    if (sub) {
      await trx
        .updateTable("push_subscriptions")
        .set({ last_success_at: iso(done) })
        .where("id", "=", sub.id)
        .execute();
    }
    await redactSecrets(trx, row);
    if (row.alert_id) {
      await addTimeline(trx, row.alert_id, done, "notification_sent", null, {
        deliveryId: id,
        channel: row.channel,
        recipient: row.recipient_name,
        ...(outcome.status === "outbox"
          ? { status: "outbox", reason: "SMS is not configured: kept in the outbox" }
          : {}),
      });
    }
    await ctx.completeWithin(trx);
  });
}

async function sendPush(
  deps: DeliveryDeps,
  row: DeliveryRow,
  sub: PushSubscriptionRow | undefined,
  rendered: Rendered,
  opts: {
    link: string | undefined;
    quiet: boolean;
    facts: AlertFacts | undefined;
    settings: Settings;
  },
) {
  if (!sub) {
    throw new SendError("permanent", "no_subscription", "the push subscription was removed");
  }
  const critical = row.severity === "critical";
  await deps.push.send({
    endpoint: sub.endpoint,
    p256dh: sub.p256dh,
    auth: sub.auth,
    payload: JSON.stringify({
      title: rendered.title,
      body: rendered.body,
      url: opts.link ?? deps.publicUrl,
      alertId: row.alert_id,
      residentName: opts.facts?.residentName ?? null,
      severity: row.severity,
      kind: opts.facts?.kind ?? null,
      tag: row.alert_id ?? row.id,
    }),
    urgency: critical ? "high" : opts.quiet ? "low" : "normal",
    ttlSeconds: critical ? opts.settings["notifications.critical_push_ttl_s"] : 6 * 3600,
  });
}

/** One-time codes and invitation links are not kept once sent. */
async function redactSecrets(db: Executor, row: DeliveryRow) {
  const stored = JSON.parse(row.message) as Record<string, unknown>;
  if (!("code" in stored) && !("url" in stored)) return;
  delete stored.code;
  delete stored.url;
  await db
    .updateTable("deliveries")
    .set({ message: JSON.stringify(stored) })
    .where("id", "=", row.id)
    .execute();
}

async function failed(ctx: JobContext, deps: DeliveryDeps, row: DeliveryRow, error: SendError) {
  const now = ctx.clock.now();
  if (error.kind === "transient" && ctx.attempt < MAX_ATTEMPTS) {
    await setStatus(ctx.db, row.id, "retrying", now, {
      error_code: error.code,
      error_reason: error.reason,
    });
    throw error; // the scheduler retries with backoff
  }
  await setStatus(ctx.db, row.id, "failed", now, {
    error_code: error.code,
    error_reason: error.reason,
  });
  if (error.addressDead === "gone" && row.subscription_id) {
    await ctx.db.deleteFrom("push_subscriptions").where("id", "=", row.subscription_id).execute();
  }
  if (error.addressDead === "opted_out" && row.phone) {
    await ctx.db
      .updateTable("phone_numbers")
      .set({ opted_out_at: iso(now), updated_at: iso(now) })
      .where("phone", "=", row.phone)
      .execute();
  }
  if (row.alert_id) {
    await addTimeline(ctx.db, row.alert_id, now, "notification_failed", null, {
      deliveryId: row.id,
      channel: row.channel,
      recipient: row.recipient_name,
      reason: error.reason,
    });
  }
  if (row.purpose === "alert_step") await afterStepFailure(ctx, deps, row);
}

/** Public for the status callback: Twilio's later "undelivered"/"failed" has the same effect. */
export async function afterStepFailure(
  ctx: { db: Executor; clock: { now(): Date } },
  deps: Pick<DeliveryDeps, "onEscalateNow">,
  row: DeliveryRow,
) {
  const now = ctx.clock.now();
  const alertId = row.alert_id!;
  const step = row.step ?? 0;
  // The same person by their other channel, at once, if this step has not tried it yet.
  if (row.user_id) {
    const other = row.channel === "sms" ? "push" : "sms";
    const tried = await ctx.db
      .selectFrom("deliveries")
      .select("id")
      .where("alert_id", "=", alertId)
      .where("step", "=", step)
      .where("user_id", "=", row.user_id)
      .where("channel", "=", other)
      .where("status", "!=", "skipped")
      .executeTakeFirst();
    const person = tried ? null : await personForUser(ctx.db, row.user_id);
    if (person) {
      await queueMessage(
        ctx.db,
        { ...person, channels: null },
        {
          purpose: "alert_step",
          message: { t: "alert", alertId },
          channels: [other],
          alertId,
          step,
          severity: (row.severity ?? "critical") as "critical",
          dedupeKey: `alert:${alertId}:${step}:fallback`,
          requireConfirmedPhone: true,
        },
        now,
        await getSettings(ctx.db),
      );
    }
  }
  // Nobody in this step can still be reached: the next tier, now rather than after the wait.
  const alive = await ctx.db
    .selectFrom("deliveries")
    .select("id")
    .where("alert_id", "=", alertId)
    .where("step", "=", step)
    .where("purpose", "=", "alert_step")
    .where("status", "in", [
      "pending",
      "sending",
      "retrying",
      "sent",
      "queued",
      "delivered",
      "outbox",
    ])
    .executeTakeFirst();
  if (alive) {
    deps.onEscalateNow();
    return;
  }
  const moved = await ctx.db
    .updateTable("jobs")
    .set({ due_at: iso(now), updated_at: iso(now) })
    .where("dedupe_key", "=", `alert-step:${alertId}:${step + 1}`)
    .where("status", "=", "pending")
    .where("due_at", ">", iso(now))
    .executeTakeFirst();
  if (Number(moved.numUpdatedRows) > 0) {
    await ctx.db
      .updateTable("alerts")
      .set({ next_step_at: iso(now) })
      .where("id", "=", alertId)
      .where("status", "=", "open")
      .execute();
    await addTimeline(ctx.db, alertId, now, "nobody_reached", null, {
      step,
      reason: "no one in this tier could be reached: the next tier is called now",
    });
  }
  deps.onEscalateNow();
}

/** Low-severity notices and capped warnings for one person, in one message. */
async function sendBundle(ctx: JobContext, personKey: string) {
  const now = ctx.clock.now();
  const [kind, ...rest] = personKey.split(":");
  const value = rest.join(":");
  let q = ctx.db.selectFrom("deliveries").selectAll().where("status", "in", ["bundled", "capped"]);
  q =
    kind === "user"
      ? q.where("user_id", "=", value)
      : q.where("phone", "=", value).where("user_id", "is", null);
  const held = await q.orderBy("created_at").execute();
  if (held.length === 0) return;
  const first = JSON.parse(held[0]!.message) as { language?: string; timeZone?: string };
  const alertIds = [...new Set(held.flatMap((h) => (h.alert_id ? [h.alert_id] : [])))];
  const person =
    kind === "user"
      ? await personForUser(ctx.db, value)
      : await personForPhone(ctx.db, value, held[0]!.recipient_name ?? value, {
          language: first.language ?? "en",
          timeZone: first.timeZone ?? "UTC",
        });
  await ctx.db.transaction().execute(async (trx) => {
    if (person && alertIds.length > 0) {
      const channels = [...new Set(held.map((h) => h.channel))];
      await queueMessage(
        trx,
        person,
        {
          purpose: "alert_bundle",
          message: { t: "alert_bundle", alertIds },
          channels,
          dedupeKey: `bundle:${personKey}:${ctx.jobId}`,
          requireConfirmedPhone: true,
        },
        now,
        await getSettings(trx),
      );
    }
    await trx
      .updateTable("deliveries")
      .set({ status: "sent", error_reason: "sent in a bundle", updated_at: iso(now) })
      .where(
        "id",
        "in",
        held.map((h) => h.id),
      )
      .execute();
    await ctx.completeWithin(trx);
  });
}
