// The shared family wallet: every member of a resident's circle can top it up (so brothers and
// sisters in different cities share the cost), each top-up shows who paid, and a contributor can
// take back money of theirs that nothing has committed yet. Top-ups arrive through a payment
// gateway interface: an operator recording money received offline, or the gateway's webhook.
import { createHmac, timingSafeEqual } from "node:crypto";
import { authorizeResident } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import type { Executor, Trx } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import type { RequestCtx } from "../request-ctx";
import { getSetting } from "../settings/settings.service";
import { accounts, balanceOf, formatMoney, isPostgres, post } from "./ledger";
import type { PaymentRow, WithdrawalRow } from "./ledger.table";

type Ctx = RequestCtx & { actor: Actor };

export async function walletCurrency(db: Executor): Promise<string> {
  return getSetting(db, "marketplace.currency");
}

/** Money a member put in, minus what they took back or asked to take back. */
async function contributions(db: Executor, residentId: string) {
  const paid = await db
    .selectFrom("payments as p")
    .innerJoin("users as u", "u.id", "p.payer_user_id")
    .select([
      "p.payer_user_id",
      "u.display_name",
      (eb) => eb.fn.sum<number>("p.amount").as("total"),
    ])
    .where("p.resident_id", "=", residentId)
    .where("p.status", "=", "completed")
    .groupBy(["p.payer_user_id", "u.display_name"])
    .execute();
  const taken = await db
    .selectFrom("withdrawals")
    .select(["requested_by", (eb) => eb.fn.sum<number>("amount").as("total")])
    .where("resident_id", "=", residentId)
    .where("status", "in", ["requested", "paid"])
    .groupBy("requested_by")
    .execute();
  const takenBy = new Map(taken.map((t) => [t.requested_by, Number(t.total)]));
  return paid.map((p) => ({
    userId: p.payer_user_id,
    displayName: p.display_name,
    toppedUp: Number(p.total),
    withdrawn: takenBy.get(p.payer_user_id) ?? 0,
  }));
}

export async function getWallet(db: Executor, ctx: Ctx, residentId: string) {
  await authorizeResident(db, ctx.actor, residentId, "viewWallet");
  const currency = await walletCurrency(db);
  const balance = await balanceOf(db, accounts.wallet(residentId).id);
  const pending = await db
    .selectFrom("withdrawals")
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>("amount"), eb.val(0)).as("total"))
    .where("resident_id", "=", residentId)
    .where("status", "=", "requested")
    .executeTakeFirst();
  return {
    residentId,
    currency,
    balance,
    pendingWithdrawals: Number(pending?.total ?? 0),
    contributors: await contributions(db, residentId),
  };
}

/** Every movement of the wallet, newest first: when, what, how much, who. */
export async function walletStatement(
  db: Executor,
  ctx: Ctx,
  residentId: string,
  page: { limit: number; before?: string | undefined },
) {
  await authorizeResident(db, ctx.actor, residentId, "viewWallet");
  let q = db
    .selectFrom("ledger_entries as e")
    .innerJoin("ledger_transactions as t", "t.id", "e.transaction_id")
    .leftJoin("users as u", "u.id", "t.created_by")
    .select([
      "e.id",
      "e.amount",
      "e.created_at",
      "t.id as transaction_id",
      "t.kind",
      "t.description",
      "t.reference_type",
      "t.reference_id",
      "t.created_by",
      "u.display_name",
    ])
    .where("e.account_id", "=", accounts.wallet(residentId).id);
  if (page.before) q = q.where("e.id", "<", page.before);
  const rows = await q
    .orderBy("e.id", "desc")
    .limit(page.limit + 1)
    .execute();
  const items = rows.slice(0, page.limit);
  return {
    currency: await walletCurrency(db),
    balance: await balanceOf(db, accounts.wallet(residentId).id),
    items: items.map((r) => ({
      id: r.id,
      at: r.created_at,
      kind: r.kind,
      description: r.description,
      amount: Number(r.amount),
      transactionId: r.transaction_id,
      reference: r.reference_type ? { type: r.reference_type, id: r.reference_id } : null,
      by: r.created_by ? { id: r.created_by, displayName: r.display_name ?? "" } : null,
    })),
    nextCursor: rows.length > page.limit ? (items.at(-1)?.id ?? null) : null,
  };
}

function presentPayment(p: PaymentRow) {
  return {
    id: p.id,
    residentId: p.resident_id,
    payerUserId: p.payer_user_id,
    method: p.method,
    amount: Number(p.amount),
    currency: p.currency,
    status: p.status,
    reference: p.reference,
    createdAt: p.created_at,
    completedAt: p.completed_at,
  };
}

async function mustBeContributor(db: Executor, residentId: string, userId: string) {
  const member = await db
    .selectFrom("circle_members")
    .select("user_id")
    .where("resident_id", "=", residentId)
    .where("user_id", "=", userId)
    .executeTakeFirst();
  if (!member) {
    throw new AppError(
      "validation_failed",
      "the payer must be a member of the resident's family circle",
      {
        issues: [{ path: "payerUserId", message: "not in the circle" }],
      },
    );
  }
}

/** Credits a completed payment to the wallet, in the caller's transaction. */
async function credit(trx: Trx, payment: PaymentRow, actorId: string | null, now: Date) {
  const payer = await trx
    .selectFrom("users")
    .select("display_name")
    .where("id", "=", payment.payer_user_id)
    .executeTakeFirstOrThrow();
  const txId = await post(
    trx,
    {
      kind: "top_up",
      description: `Top-up by ${payer.display_name} (${payment.method.replace("_", " ")})`,
      currency: payment.currency,
      residentId: payment.resident_id,
      reference: { type: "payment", id: payment.id },
      createdBy: actorId ?? payment.payer_user_id,
      entries: [
        { account: accounts.outside(), amount: -payment.amount },
        { account: accounts.wallet(payment.resident_id), amount: payment.amount },
      ],
    },
    now,
  );
  await trx
    .updateTable("payments")
    .set({ status: "completed", transaction_id: txId, completed_at: iso(now) })
    .where("id", "=", payment.id)
    .execute();
}

/** An operator records money received offline (cash, bank transfer) for a payer of the circle. */
export async function recordOfflineTopUp(
  trx: Trx,
  ctx: Ctx,
  residentId: string,
  input: {
    payerUserId: string;
    amount: number;
    method: "cash" | "bank_transfer";
    reference?: string | undefined;
  },
) {
  const resident = await trx
    .selectFrom("residents")
    .select("id")
    .where("id", "=", residentId)
    .executeTakeFirst();
  if (!resident) throw notFound("the resident");
  await mustBeContributor(trx, residentId, input.payerUserId);
  const payment: PaymentRow = {
    id: newId(),
    resident_id: residentId,
    payer_user_id: input.payerUserId,
    method: input.method,
    amount: input.amount,
    currency: await walletCurrency(trx),
    status: "pending",
    reference: input.reference ?? null,
    gateway_event_id: null,
    transaction_id: null,
    recorded_by: ctx.actor.userId,
    created_at: iso(ctx.now),
    completed_at: null,
  };
  await trx.insertInto("payments").values(payment).execute();
  await credit(trx, payment, ctx.actor.userId, ctx.now);
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: "wallet.top_up.offline",
      entityType: "payment",
      entityId: payment.id,
      residentId,
      requestId: ctx.requestId,
      details: { amount: input.amount, method: input.method },
    },
    ctx.now,
  );
  return presentPayment({ ...payment, status: "completed", completed_at: iso(ctx.now) });
}

/** A family member starts paying through the gateway; the gateway's webhook completes it. */
export async function startGatewayTopUp(trx: Trx, ctx: Ctx, residentId: string, amount: number) {
  await authorizeResident(trx, ctx.actor, residentId, "payIntoWallet");
  const payment: PaymentRow = {
    id: newId(),
    resident_id: residentId,
    payer_user_id: ctx.actor.userId,
    method: "gateway",
    amount,
    currency: await walletCurrency(trx),
    status: "pending",
    reference: null,
    gateway_event_id: null,
    transaction_id: null,
    recorded_by: null,
    created_at: iso(ctx.now),
    completed_at: null,
  };
  await trx.insertInto("payments").values(payment).execute();
  return presentPayment(payment);
}

const SIGNATURE_TOLERANCE_S = 300;

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, within five minutes. */
export function verifyGatewaySignature(secret: string, header: string, body: string, now: Date) {
  const parts = Object.fromEntries(
    header.split(",").map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
    }),
  );
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(now.getTime() / 1000 - t) > SIGNATURE_TOLERANCE_S)
    return false;
  const expected = Buffer.from(createHmac("sha256", secret).update(`${t}.${body}`).digest("hex"));
  const given = Buffer.from(String(parts.v1 ?? ""));
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export interface GatewayEvent {
  id: string;
  type: "payment.succeeded" | "payment.failed";
  data: { paymentId: string; amount: number; currency: string };
}

/** Applies a gateway event once: the same event id again changes nothing. */
export async function applyGatewayEvent(trx: Trx, event: GatewayEvent, now: Date) {
  const seen = await trx
    .selectFrom("payments")
    .select("id")
    .where("gateway_event_id", "=", event.id)
    .executeTakeFirst();
  if (seen) return { duplicate: true };
  const payment = await trx
    .selectFrom("payments")
    .selectAll()
    .where("id", "=", event.data.paymentId)
    .$if(isPostgres(trx), (q) => q.forUpdate())
    .executeTakeFirst();
  if (payment?.method !== "gateway") throw notFound("the payment");
  if (payment.status !== "pending") return { duplicate: true };
  if (payment.amount !== event.data.amount || payment.currency !== event.data.currency) {
    throw new AppError(
      "validation_failed",
      "the event's amount or currency does not match the payment",
      {
        issues: [
          {
            path: "data.amount",
            message: `expected ${formatMoney(payment.amount, payment.currency)}`,
          },
        ],
      },
    );
  }
  await trx
    .updateTable("payments")
    .set({ gateway_event_id: event.id })
    .where("id", "=", payment.id)
    .execute();
  if (event.type === "payment.failed") {
    await trx
      .updateTable("payments")
      .set({ status: "failed", completed_at: iso(now) })
      .where("id", "=", payment.id)
      .execute();
    return { duplicate: false };
  }
  await credit(trx, payment, null, now);
  return { duplicate: false };
}

function presentWithdrawal(w: WithdrawalRow) {
  return {
    id: w.id,
    residentId: w.resident_id,
    requestedBy: w.requested_by,
    amount: Number(w.amount),
    currency: w.currency,
    status: w.status,
    reason: w.reason,
    createdAt: w.created_at,
    decidedAt: w.decided_at,
  };
}

/** A contributor asks for money of theirs back; it is held at once, so nothing can spend it. */
export async function requestWithdrawal(trx: Trx, ctx: Ctx, residentId: string, amount: number) {
  await authorizeResident(trx, ctx.actor, residentId, "payIntoWallet");
  const mine = (await contributions(trx, residentId)).find((c) => c.userId === ctx.actor.userId);
  const left = (mine?.toppedUp ?? 0) - (mine?.withdrawn ?? 0);
  const currency = await walletCurrency(trx);
  if (amount > left) {
    throw new AppError(
      "insufficient_funds",
      `you can take back at most what you put in and have not taken back: ${formatMoney(Math.max(left, 0), currency)}`,
      { available: Math.max(left, 0), currency },
    );
  }
  const row: WithdrawalRow = {
    id: newId(),
    resident_id: residentId,
    requested_by: ctx.actor.userId,
    amount,
    currency,
    status: "requested",
    reason: null,
    decided_by: null,
    created_at: iso(ctx.now),
    decided_at: null,
  };
  await trx.insertInto("withdrawals").values(row).execute();
  // Money already committed to visits is not in the wallet any more: post() refuses it.
  await post(
    trx,
    {
      kind: "withdrawal_hold",
      description: `Withdrawal asked by ${ctx.actor.displayName}`,
      currency,
      residentId,
      reference: { type: "withdrawal", id: row.id },
      createdBy: ctx.actor.userId,
      entries: [
        { account: accounts.wallet(residentId), amount: -amount },
        { account: accounts.hold(row.id), amount },
      ],
    },
    ctx.now,
  );
  return presentWithdrawal(row);
}

/** An operator pays a withdrawal out (money leaves kincare) or turns it down (back to the wallet). */
export async function decideWithdrawal(
  trx: Trx,
  ctx: Ctx,
  withdrawalId: string,
  decision: { action: "pay" | "reject"; reason?: string | undefined },
) {
  const w = await trx
    .selectFrom("withdrawals")
    .selectAll()
    .where("id", "=", withdrawalId)
    .executeTakeFirst();
  if (!w) throw notFound("the withdrawal");
  if (w.status !== "requested")
    throw new AppError("invalid_state", `this withdrawal is already ${w.status}`);
  const pay = decision.action === "pay";
  await post(
    trx,
    {
      kind: pay ? "withdrawal_payout" : "withdrawal_returned",
      description: pay
        ? "Withdrawal paid out"
        : `Withdrawal turned down: ${decision.reason ?? ""}`.trim(),
      currency: w.currency,
      residentId: w.resident_id,
      reference: { type: "withdrawal", id: w.id },
      createdBy: ctx.actor.userId,
      entries: [
        { account: accounts.hold(w.id), amount: -w.amount },
        { account: pay ? accounts.outside() : accounts.wallet(w.resident_id), amount: w.amount },
      ],
    },
    ctx.now,
  );
  const status = pay ? "paid" : "rejected";
  await trx
    .updateTable("withdrawals")
    .set({
      status,
      reason: decision.reason ?? null,
      decided_by: ctx.actor.userId,
      decided_at: iso(ctx.now),
    })
    .where("id", "=", w.id)
    .execute();
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: pay ? "wallet.withdrawal.paid" : "wallet.withdrawal.rejected",
      entityType: "withdrawal",
      entityId: w.id,
      residentId: w.resident_id,
      requestId: ctx.requestId,
    },
    ctx.now,
  );
  return presentWithdrawal({
    ...w,
    status,
    reason: decision.reason ?? null,
    decided_at: iso(ctx.now),
  });
}

export async function listWithdrawals(
  db: Executor,
  ctx: Ctx,
  filter: { residentId?: string | undefined; status?: string | undefined },
) {
  if (filter.residentId) await authorizeResident(db, ctx.actor, filter.residentId, "viewWallet");
  else if (!ctx.actor.roles.includes("operator")) {
    throw new AppError("forbidden", "name a resident, or be an operator to see every withdrawal");
  }
  let q = db.selectFrom("withdrawals").selectAll();
  if (filter.residentId) q = q.where("resident_id", "=", filter.residentId);
  if (filter.status) q = q.where("status", "=", filter.status as WithdrawalRow["status"]);
  const rows = await q.orderBy("created_at", "desc").limit(200).execute();
  return { items: rows.map(presentWithdrawal) };
}
