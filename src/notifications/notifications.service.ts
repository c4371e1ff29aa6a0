// What a person manages about being reached: their push subscriptions, the confirmation of their
// phone number (and of an emergency contact's), and, for operators, the SMS outbox.
import { randomInt } from "node:crypto";
import { authorizeResident } from "../access/access";
import { hashToken } from "../accounts/tokens";
import { addMs, iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import type { RequestCtx } from "../request-ctx";
import { getSettings } from "../settings/settings.service";
import { personForPhone, personForUser, queueMessage } from "./queue";
import type { Message } from "./templates";

type Ctx = RequestCtx & { actor: Actor };

const CODE_TTL_MS = 10 * 60_000;
const CODE_MAX_ATTEMPTS = 5;

export interface NewSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  userAgent?: string | undefined;
}

function presentSubscription(s: {
  id: string;
  endpoint: string;
  user_agent: string | null;
  created_at: string;
  last_success_at: string | null;
}) {
  return {
    id: s.id,
    // The endpoint is a capability URL: show where it goes, not the whole of it.
    service: new URL(s.endpoint).host,
    userAgent: s.user_agent,
    createdAt: s.created_at,
    lastSuccessAt: s.last_success_at,
  };
}

/** Registering the same endpoint again (a browser re-subscribing) moves it to this user. */
export async function addSubscription(db: Executor, ctx: Ctx, input: NewSubscription) {
  const row = {
    id: newId(),
    user_id: ctx.actor.userId,
    endpoint: input.endpoint,
    p256dh: input.keys.p256dh,
    auth: input.keys.auth,
    user_agent: input.userAgent ?? null,
    created_at: iso(ctx.now),
    last_success_at: null,
  };
  await db
    .insertInto("push_subscriptions")
    .values(row)
    .onConflict((oc) =>
      oc.column("endpoint").doUpdateSet({
        user_id: row.user_id,
        p256dh: row.p256dh,
        auth: row.auth,
        user_agent: row.user_agent,
      }),
    )
    .execute();
  const stored = await db
    .selectFrom("push_subscriptions")
    .selectAll()
    .where("endpoint", "=", input.endpoint)
    .executeTakeFirstOrThrow();
  return presentSubscription(stored);
}

export async function listSubscriptions(db: Executor, ctx: Ctx) {
  const rows = await db
    .selectFrom("push_subscriptions")
    .selectAll()
    .where("user_id", "=", ctx.actor.userId)
    .orderBy("created_at")
    .execute();
  return { items: rows.map(presentSubscription) };
}

export async function removeSubscription(db: Executor, ctx: Ctx, id: string) {
  const removed = await db
    .deleteFrom("push_subscriptions")
    .where("id", "=", id)
    .where("user_id", "=", ctx.actor.userId)
    .executeTakeFirst();
  if (Number(removed.numDeletedRows) === 0) throw notFound("the push subscription");
}

async function upsertNumber(
  db: Executor,
  phone: string,
  now: Date,
  patch: Record<string, unknown>,
) {
  await db
    .insertInto("phone_numbers")
    .values({
      phone,
      confirmed_at: null,
      opted_out_at: null,
      code_hash: null,
      code_expires_at: null,
      code_attempts: 0,
      invited_at: null,
      language: null,
      created_at: iso(now),
      updated_at: iso(now),
      ...patch,
    })
    .onConflict((oc) => oc.column("phone").doUpdateSet({ updated_at: iso(now), ...patch }))
    .execute();
}

export async function phoneStatus(db: Executor, phone: string | null) {
  if (!phone) return { phone: null, confirmed: false, optedOut: false, confirmedAt: null };
  const row = await db
    .selectFrom("phone_numbers")
    .selectAll()
    .where("phone", "=", phone)
    .executeTakeFirst();
  return {
    phone,
    confirmed: Boolean(row?.confirmed_at),
    optedOut: Boolean(row?.opted_out_at),
    confirmedAt: row?.confirmed_at ?? null,
  };
}

async function myPhone(db: Executor, ctx: Ctx): Promise<string> {
  const user = await db
    .selectFrom("users")
    .select("phone")
    .where("id", "=", ctx.actor.userId)
    .executeTakeFirstOrThrow();
  if (!user.phone) {
    throw new AppError("invalid_state", "add a phone number to your account first");
  }
  return user.phone;
}

/** Sends a six-digit code to my phone; confirming it lets alert texts reach me. */
export async function sendPhoneCode(db: Db, ctx: Ctx) {
  const phone = await myPhone(db, ctx);
  const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
  await db.transaction().execute(async (trx) => {
    const person = await personForUser(trx, ctx.actor.userId);
    await upsertNumber(trx, phone, ctx.now, {
      code_hash: hashToken(`${phone}:${code}`),
      code_expires_at: iso(addMs(ctx.now, CODE_TTL_MS)),
      code_attempts: 0,
      language: person?.language ?? null,
    });
    await queueMessage(
      trx,
      person!,
      {
        purpose: "phone_code",
        message: { t: "phone_code", code },
        channels: ["sms"],
        dedupeKey: `phone_code:${newId()}`,
        requireConfirmedPhone: false,
      },
      ctx.now,
      await getSettings(trx),
    );
  });
  return { sentTo: phone, expiresInSeconds: CODE_TTL_MS / 1000 };
}

export async function confirmPhoneCode(db: Db, ctx: Ctx, code: string) {
  const phone = await myPhone(db, ctx);
  const row = await db
    .selectFrom("phone_numbers")
    .selectAll()
    .where("phone", "=", phone)
    .executeTakeFirst();
  if (!row?.code_hash || !row.code_expires_at || row.code_expires_at < iso(ctx.now)) {
    throw new AppError("invalid_state", "no code is waiting for this number: ask for a new one");
  }
  if (row.code_attempts >= CODE_MAX_ATTEMPTS) {
    throw new AppError("too_many_attempts", "too many wrong codes: ask for a new one");
  }
  if (row.code_hash !== hashToken(`${phone}:${code}`)) {
    // Counted outside any transaction: the error that follows must not roll the count back.
    await db
      .updateTable("phone_numbers")
      .set((eb) => ({ code_attempts: eb("code_attempts", "+", 1), updated_at: iso(ctx.now) }))
      .where("phone", "=", phone)
      .execute();
    throw new AppError("validation_failed", "that code is not right", {
      issues: [{ path: "code", message: "wrong code" }],
    });
  }
  await db
    .updateTable("phone_numbers")
    .set({
      confirmed_at: iso(ctx.now),
      code_hash: null,
      code_expires_at: null,
      code_attempts: 0,
      updated_at: iso(ctx.now),
    })
    .where("phone", "=", phone)
    .where("code_hash", "=", row.code_hash)
    .execute();
  return phoneStatus(db, phone);
}

/**
 * Asks an emergency contact without an account (a neighbour) to confirm their number: a first
 * text they answer. Only numbers named in the resident's care plan or escalation policy.
 */
export async function inviteContactPhone(
  db: Db,
  ctx: Ctx,
  residentId: string,
  phone: string,
  namedNumbers: (db: Executor, residentId: string) => Promise<Map<string, string>>,
) {
  await authorizeResident(db, ctx.actor, residentId, "manageEscalation");
  const named = await namedNumbers(db, residentId);
  const name = named.get(phone);
  if (!name) {
    throw new AppError(
      "invalid_state",
      "this number is not an emergency contact of the resident: add it to the care plan first",
    );
  }
  const status = await phoneStatus(db, phone);
  if (status.confirmed) return status;
  await db.transaction().execute(async (trx) => {
    const resident = await trx
      .selectFrom("residents")
      .select(["full_name", "preferred_name", "language", "time_zone"])
      .where("id", "=", residentId)
      .executeTakeFirstOrThrow();
    await invitePhone(
      trx,
      { phone, name, language: resident.language, timeZone: resident.time_zone },
      {
        t: "phone_invite",
        residentName: resident.preferred_name ?? resident.full_name,
        byName: ctx.actor.displayName,
      },
      ctx.now,
    );
  });
  return phoneStatus(db, phone);
}

/**
 * A first text to a number kincare will send alerts to (a neighbour, a provider's on-call
 * person): any reply confirms it (src/escalation/sms-replies.ts). Nothing when already confirmed.
 */
export async function invitePhone(
  trx: Executor,
  to: { phone: string; name: string; language: string; timeZone: string },
  message: Extract<Message, { t: "phone_invite" | "on_call_invite" | "worker_invite" }>,
  now: Date,
) {
  const known = await trx
    .selectFrom("phone_numbers")
    .select("confirmed_at")
    .where("phone", "=", to.phone)
    .executeTakeFirst();
  if (known?.confirmed_at) return false;
  await upsertNumber(trx, to.phone, now, { invited_at: iso(now) });
  const person = await personForPhone(trx, to.phone, to.name, to);
  await queueMessage(
    trx,
    person,
    {
      purpose: message.t,
      message,
      channels: ["sms"],
      dedupeKey: `${message.t}:${to.phone}:${iso(now).slice(0, 13)}`,
      requireConfirmedPhone: false,
    },
    now,
    await getSettings(trx),
  );
  return true;
}

export async function listOutbox(db: Executor, q: { limit: number; before?: string | undefined }) {
  let query = db
    .selectFrom("sms_outbox as o")
    .innerJoin("deliveries as d", "d.id", "o.delivery_id")
    .select([
      "o.id",
      "o.to_phone",
      "o.body",
      "o.created_at",
      "d.purpose",
      "d.alert_id",
      "d.recipient_name",
    ]);
  if (q.before) query = query.where("o.id", "<", q.before);
  const rows = await query
    .orderBy("o.id", "desc")
    .limit(q.limit + 1)
    .execute();
  const page = rows.slice(0, q.limit);
  return {
    items: page.map((r) => ({
      id: r.id,
      to: r.to_phone,
      recipientName: r.recipient_name,
      body: r.body,
      purpose: r.purpose,
      alertId: r.alert_id,
      createdAt: r.created_at,
    })),
    nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
  };
}
