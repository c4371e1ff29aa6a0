import { createRoute } from "@hono/zod-openapi";
import { currentPlan } from "../careplans/careplans.service";
import { policyFor } from "../escalation/policy";
import { authedCtx, requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { Phone } from "../validation";
import {
  addSubscription,
  confirmPhoneCode,
  inviteContactPhone,
  listOutbox,
  listSubscriptions,
  phoneStatus,
  removeSubscription,
  sendPhoneCode,
} from "./notifications.service";

const tags = ["Notifications"];

const Subscription = z
  .object({
    id: z.string(),
    service: z.string().openapi({ description: "The push service's host" }),
    userAgent: z.string().nullable(),
    createdAt: z.string(),
    lastSuccessAt: z.string().nullable(),
  })
  .openapi("PushSubscription");

const PhoneStatus = z
  .object({
    phone: z.string().nullable(),
    confirmed: z.boolean(),
    optedOut: z.boolean(),
    confirmedAt: z.string().nullable(),
  })
  .openapi("PhoneStatus");

const base64url = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, "base64url");

/** Numbers named in a resident's care plan or escalation policy, with the names given them. */
async function namedNumbers(db: AppDeps["db"], residentId: string) {
  const named = new Map<string, string>();
  const plan = await currentPlan(db, residentId).catch(() => null);
  for (const c of plan?.plan.emergencyContacts ?? [])
    if (c.kind === "phone") named.set(c.phone, c.name);
  const { policy } = await policyFor(db, residentId);
  for (const tier of policy.tiers) {
    for (const r of tier.recipients) if (r.kind === "phone") named.set(r.phone, r.name);
  }
  return named;
}

export function notificationsRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/push/vapid-public-key",
      tags,
      summary: "The VAPID public key a browser subscribes with (applicationServerKey)",
      responses: { 200: jsonResponse(z.object({ publicKey: z.string() }), "The key") },
    }),
    (c) => c.json({ publicKey: deps.alerting.push.publicKey }, 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/push/subscriptions",
      tags,
      summary: "Turn on push notifications for this browser or phone",
      request: {
        ...jsonBody(
          z.strictObject({
            endpoint: z.url({ protocol: /^https$/ }).max(2048),
            keys: z.object({ p256dh: base64url.max(200), auth: base64url.max(100) }),
            expirationTime: z.number().nullable().optional(),
          }),
          "A PushSubscription as the browser gives it (JSON)",
        ),
      },
      responses: { 201: jsonResponse(Subscription, "Subscribed"), ...errorResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const sub = await addSubscription(deps.db, authedCtx(c, deps), {
        endpoint: body.endpoint,
        keys: body.keys,
        userAgent: c.req.header("user-agent")?.slice(0, 200),
      });
      return c.json(sub, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/push/subscriptions",
      tags,
      summary: "My push subscriptions",
      responses: {
        200: jsonResponse(z.object({ items: z.array(Subscription) }), "Subscriptions"),
        ...errorResponses,
      },
    }),
    async (c) => c.json(await listSubscriptions(deps.db, authedCtx(c, deps)), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/push/subscriptions/{subscriptionId}",
      tags,
      summary: "Turn off push notifications for one browser or phone",
      request: { params: z.object({ subscriptionId: z.string().max(64) }) },
      responses: { 204: { description: "Removed" }, ...errorResponses },
    }),
    async (c) => {
      await removeSubscription(deps.db, authedCtx(c, deps), c.req.valid("param").subscriptionId);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/me/phone",
      tags,
      summary: "Whether my phone number is confirmed for alert texts",
      responses: { 200: jsonResponse(PhoneStatus, "Status"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const user = await deps.db
        .selectFrom("users")
        .select("phone")
        .where("id", "=", ctx.actor.userId)
        .executeTakeFirstOrThrow();
      return c.json(await phoneStatus(deps.db, user.phone), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/me/phone/confirmation",
      tags,
      summary: "Text me a code that confirms my phone number",
      responses: {
        202: jsonResponse(
          z.object({ sentTo: z.string(), expiresInSeconds: z.number() }),
          "A code is on its way",
        ),
        ...errorResponses,
      },
    }),
    async (c) => c.json(await sendPhoneCode(deps.db, authedCtx(c, deps)), 202),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/me/phone/confirm",
      tags,
      summary: "Confirm my phone number with the code I received",
      request: { ...jsonBody(z.strictObject({ code: z.string().regex(/^\d{6}$/, "six digits") })) },
      responses: { 200: jsonResponse(PhoneStatus, "Confirmed"), ...errorResponses },
    }),
    async (c) =>
      c.json(await confirmPhoneCode(deps.db, authedCtx(c, deps), c.req.valid("json").code), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/contact-phones/confirmation",
      tags,
      summary: "Ask an emergency contact without an account to confirm their number by reply",
      request: {
        params: z.object({ residentId: z.string().max(64) }),
        ...jsonBody(z.strictObject({ phone: Phone })),
      },
      responses: {
        202: jsonResponse(PhoneStatus, "The first text is on its way"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await inviteContactPhone(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").residentId,
          c.req.valid("json").phone,
          namedNumbers,
        ),
        202,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/notifications/outbox",
      tags,
      summary: "Texts kept while SMS is not configured (operators)",
      request: {
        query: z.object({
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().max(64).optional(),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({
            smsEnabled: z.boolean(),
            items: z.array(
              z.object({
                id: z.string(),
                to: z.string(),
                recipientName: z.string().nullable(),
                body: z.string(),
                purpose: z.string(),
                alertId: z.string().nullable(),
                createdAt: z.string(),
              }),
            ),
            nextCursor: z.string().nullable(),
          }),
          "The outbox, newest first",
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      requireRole(c, "operator");
      const { cursor, limit } = c.req.valid("query");
      const page = await listOutbox(deps.db, { limit, before: cursor });
      return c.json({ smsEnabled: deps.alerting.sms.enabled, ...page }, 200);
    },
  );

  return app;
}
