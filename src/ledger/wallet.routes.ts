import { createRoute } from "@hono/zod-openapi";
import { AppError } from "../errors";
import { authedCtx, requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { once } from "./idempotency";
import {
  applyGatewayEvent,
  decideWithdrawal,
  type GatewayEvent,
  getWallet,
  listWithdrawals,
  recordOfflineTopUp,
  requestWithdrawal,
  startGatewayTopUp,
  verifyGatewaySignature,
  walletStatement,
} from "./wallet.service";

const tags = ["Wallet"];
const ResidentParams = z.object({ residentId: z.string().max(64) });
const Amount = z
  .number()
  .int("an amount in minor units (fen, cents): a whole number")
  .min(1)
  .max(100_000_000)
  .openapi({ description: "Minor units of the marketplace currency (CNY 12.50 = 1250)" });
const Wallet = z
  .object({
    residentId: z.string(),
    currency: z.string(),
    balance: z.number(),
    pendingWithdrawals: z.number(),
    contributors: z.array(
      z.object({
        userId: z.string(),
        displayName: z.string(),
        toppedUp: z.number(),
        withdrawn: z.number(),
      }),
    ),
  })
  .openapi("Wallet");

const Payment = z
  .object({
    id: z.string(),
    residentId: z.string(),
    payerUserId: z.string(),
    method: z.string(),
    amount: z.number(),
    currency: z.string(),
    status: z.string(),
    reference: z.string().nullable(),
    createdAt: z.string(),
    completedAt: z.string().nullable(),
  })
  .openapi("Payment");

const Withdrawal = z
  .object({
    id: z.string(),
    residentId: z.string(),
    requestedBy: z.string(),
    amount: z.number(),
    currency: z.string(),
    status: z.string(),
    reason: z.string().nullable(),
    createdAt: z.string(),
    decidedAt: z.string().nullable(),
  })
  .openapi("Withdrawal");

export function walletRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/wallet",
      tags,
      summary: "The shared wallet: balance, and what each relative put in",
      request: { params: ResidentParams },
      responses: { 200: jsonResponse(Wallet, "The wallet"), ...errorResponses },
    }),
    async (c) =>
      c.json(await getWallet(deps.db, authedCtx(c, deps), c.req.valid("param").residentId), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/wallet/statement",
      tags,
      summary: "Every movement of the wallet, newest first, with who and why",
      request: {
        params: ResidentParams,
        query: z.object({
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().max(64).optional(),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({
            currency: z.string(),
            balance: z.number(),
            items: z.array(
              z.object({
                id: z.string(),
                at: z.string(),
                kind: z.string(),
                description: z.string(),
                amount: z.number(),
                transactionId: z.string(),
                reference: z.object({ type: z.string(), id: z.string().nullable() }).nullable(),
                by: z.object({ id: z.string(), displayName: z.string() }).nullable(),
              }),
            ),
            nextCursor: z.string().nullable(),
          }),
          "The statement",
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { cursor, limit } = c.req.valid("query");
      return c.json(
        await walletStatement(deps.db, authedCtx(c, deps), c.req.valid("param").residentId, {
          limit,
          before: cursor,
        }),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/wallet/top-ups",
      tags,
      summary: "Record money received offline (cash, bank transfer) for a relative (operators)",
      request: {
        params: ResidentParams,
        ...jsonBody(
          z.strictObject({
            payerUserId: z.string().min(1).max(64),
            amount: Amount,
            method: z.enum(["cash", "bank_transfer"]),
            reference: z.string().trim().max(200).optional(),
          }),
        ),
      },
      responses: { 201: jsonResponse(Payment, "Credited to the wallet"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      const { residentId } = c.req.valid("param");
      const body = c.req.valid("json");
      const answer = await once(c, deps, "top-up", [residentId, body], 201, (trx, ctx) =>
        recordOfflineTopUp(trx, ctx, residentId, body),
      );
      return c.json(answer, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/wallet/payment-intents",
      tags,
      summary: "Start paying into the wallet through the payment gateway",
      request: {
        params: ResidentParams,
        ...jsonBody(z.strictObject({ amount: Amount })),
      },
      responses: {
        201: jsonResponse(Payment, "A pending payment: the gateway's webhook completes it"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { residentId } = c.req.valid("param");
      const { amount } = c.req.valid("json");
      const answer = await once(c, deps, "intent", [residentId, amount], 201, (trx, ctx) =>
        startGatewayTopUp(trx, ctx, residentId, amount),
      );
      return c.json(answer, 201);
    },
  );

  // The gateway's webhook: HMAC-signed, and idempotent by event id.
  app.post("/webhooks/payments", async (c) => {
    const secret = deps.config.PAYMENTS_WEBHOOK_SECRET;
    if (!secret) throw new AppError("unavailable", "the payment gateway is not configured");
    const body = await c.req.text();
    if (
      !verifyGatewaySignature(
        secret,
        c.req.header("x-kincare-signature") ?? "",
        body,
        deps.clock.now(),
      )
    ) {
      throw new AppError("signature_invalid", "the signature of this event is not valid");
    }
    const parsed = GatewayEventSchema.safeParse(safeJson(body));
    if (!parsed.success)
      throw new AppError("bad_request", "not a payment event kincare understands");
    const result = await deps.db
      .transaction()
      .execute((trx) => applyGatewayEvent(trx, parsed.data as GatewayEvent, deps.clock.now()));
    return c.json({ received: true, duplicate: result.duplicate }, 200);
  });

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/wallet/withdrawals",
      tags,
      summary:
        "Ask for money of mine not yet committed back (it is held until an operator pays it)",
      request: {
        params: ResidentParams,
        ...jsonBody(z.strictObject({ amount: Amount })),
      },
      responses: { 201: jsonResponse(Withdrawal, "Requested and held"), ...errorResponses },
    }),
    async (c) => {
      const { residentId } = c.req.valid("param");
      const { amount } = c.req.valid("json");
      const answer = await once(c, deps, "withdraw", [residentId, amount], 201, (trx, ctx) =>
        requestWithdrawal(trx, ctx, residentId, amount),
      );
      return c.json(answer, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/withdrawals",
      tags,
      summary: "Withdrawal requests: a resident's, or all of them (operators)",
      request: {
        query: z.object({
          residentId: z.string().max(64).optional(),
          status: z.enum(["requested", "paid", "rejected"]).optional(),
        }),
      },
      responses: {
        200: jsonResponse(z.object({ items: z.array(Withdrawal) }), "Withdrawals"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(await listWithdrawals(deps.db, authedCtx(c, deps), c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/withdrawals/{withdrawalId}/decision",
      tags,
      summary: "Pay a withdrawal out, or turn it down with a reason (operators)",
      request: {
        params: z.object({ withdrawalId: z.string().max(64) }),
        ...jsonBody(
          z
            .strictObject({
              action: z.enum(["pay", "reject"]),
              reason: z.string().trim().min(1).max(500).optional(),
            })
            .refine((d) => d.action === "pay" || d.reason, {
              message: "turning a withdrawal down needs a reason",
              path: ["reason"],
            }),
        ),
      },
      responses: { 200: jsonResponse(Withdrawal, "Decided"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      const { withdrawalId } = c.req.valid("param");
      const body = c.req.valid("json");
      const answer = await once(
        c,
        deps,
        "withdrawal-decision",
        [withdrawalId, body],
        200,
        (trx, ctx) => decideWithdrawal(trx, ctx, withdrawalId, body),
      );
      return c.json(answer, 200);
    },
  );

  return app;
}

const GatewayEventSchema = z.object({
  id: z.string().min(1).max(200),
  type: z.enum(["payment.succeeded", "payment.failed"]),
  data: z.object({
    paymentId: z.string().min(1).max(64),
    amount: z.number().int().min(1),
    currency: z.string().regex(/^[A-Z]{3}$/),
  }),
});

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
