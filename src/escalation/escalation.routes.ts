import { createRoute } from "@hono/zod-openapi";
import { authorizeResident } from "../access/access";
import { getAlert } from "../alerts/alerts.service";
import { AppError, notFound } from "../errors";
import { authedCtx, requireActor, requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { acknowledge, acknowledgerForUser } from "./acknowledge";
import { deskState, handOver, setDuty } from "./desk";
import { streamAlerts } from "./feed";
import { PolicySchema, readPolicy, writePolicy } from "./policy";

const tags = ["Escalation"];
const ResidentParams = z.object({ residentId: z.string().max(64) });
const AlertParams = z.object({ alertId: z.string().max(64) });

const PolicyResponse = z
  .object({
    policy: PolicySchema,
    custom: z
      .boolean()
      .openapi({ description: "False: the default, from the care plan's emergency contacts" }),
    updatedAt: z.string().nullable(),
  })
  .openapi("EscalationPolicyState");

const Desk = z
  .object({
    onDuty: z.array(z.object({ userId: z.string(), displayName: z.string(), since: z.string() })),
    openAlerts: z.array(z.object({ status: z.string(), severity: z.string(), count: z.number() })),
  })
  .openapi("Desk");

const Delivery = z
  .object({
    id: z.string(),
    purpose: z.string(),
    step: z.number().nullable(),
    channel: z.string(),
    recipientName: z.string().nullable(),
    status: z.string(),
    errorCode: z.string().nullable(),
    reason: z.string().nullable(),
    createdAt: z.string(),
    sentAt: z.string().nullable(),
  })
  .openapi("Delivery");

export function escalationRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/escalation-policy",
      tags,
      summary: "Who is called, in which order, when this resident needs help",
      request: { params: ResidentParams },
      responses: { 200: jsonResponse(PolicyResponse, "The policy"), ...errorResponses },
    }),
    async (c) =>
      c.json(await readPolicy(deps.db, authedCtx(c, deps), c.req.valid("param").residentId), 200),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/residents/{residentId}/escalation-policy",
      tags,
      summary: "Set the chain (primary family members and operators); alerts in flight keep theirs",
      request: { params: ResidentParams, ...jsonBody(PolicySchema) },
      responses: { 200: jsonResponse(PolicyResponse, "Saved"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await writePolicy(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").residentId,
          c.req.valid("json"),
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/residents/{residentId}/escalation-policy",
      tags,
      summary: "Go back to the default chain from the care plan",
      request: { params: ResidentParams },
      responses: { 200: jsonResponse(PolicyResponse, "Reset"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await writePolicy(deps.db, authedCtx(c, deps), c.req.valid("param").residentId, null),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/alerts/{alertId}/deliveries",
      tags,
      summary: "Every message sent for an alert, with its delivery state",
      request: { params: AlertParams },
      responses: {
        200: jsonResponse(z.object({ items: z.array(Delivery) }), "Deliveries"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      const { alertId } = c.req.valid("param");
      const alert = await deps.db
        .selectFrom("alerts")
        .select("resident_id")
        .where("id", "=", alertId)
        .executeTakeFirst();
      if (!alert) throw notFound("the alert");
      await authorizeResident(deps.db, ctx.actor, alert.resident_id, "viewAlerts");
      const rows = await deps.db
        .selectFrom("deliveries")
        .selectAll()
        .where("alert_id", "=", alertId)
        .orderBy("created_at")
        .orderBy("id")
        .execute();
      return c.json(
        {
          items: rows.map((r) => ({
            id: r.id,
            purpose: r.purpose,
            step: r.step,
            channel: r.channel,
            recipientName: r.recipient_name,
            status: r.status,
            errorCode: r.error_code,
            reason: r.error_reason,
            createdAt: r.created_at,
            sentAt: r.sent_at,
          })),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/desk",
      tags,
      summary: "The operator desk: who is on duty, open alerts by state",
      responses: { 200: jsonResponse(Desk, "The desk"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      return c.json(await deskState(deps.db), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/desk/duty",
      tags,
      summary: "Go on or off duty (the desk tier reaches operators on duty)",
      request: { ...jsonBody(z.strictObject({ onDuty: z.boolean() })) },
      responses: { 200: jsonResponse(Desk, "The desk"), ...errorResponses },
    }),
    async (c) => {
      requireRole(c, "operator");
      return c.json(await setDuty(deps.db, authedCtx(c, deps), c.req.valid("json").onDuty), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/alerts/{alertId}/claim",
      tags,
      summary: "The desk takes charge of an alert (operators)",
      request: {
        params: AlertParams,
        ...jsonBody(z.strictObject({ note: z.string().trim().max(500).optional() })),
      },
      responses: {
        200: jsonResponse(
          z.object({ id: z.string(), status: z.string() }).passthrough(),
          "Claimed",
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      requireRole(c, "operator");
      const ctx = authedCtx(c, deps);
      const { alertId } = c.req.valid("param");
      const done = await acknowledge(
        deps.db,
        deps.alerting.ack,
        {
          alertId,
          by: await acknowledgerForUser(deps.db, ctx.actor.userId),
          via: "desk",
          note: c.req.valid("json").note,
          requestId: ctx.requestId,
        },
        ctx.now,
      );
      return c.json(
        { ...(await getAlert(deps.db, ctx, alertId)), accessNotes: done.accessNotes },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/alerts/{alertId}/handover",
      tags,
      summary: "Hand an alert to another operator with a note (shift change)",
      request: {
        params: AlertParams,
        ...jsonBody(
          z.strictObject({
            toUserId: z.string().min(1).max(64),
            note: z.string().trim().min(1).max(2000),
          }),
        ),
      },
      responses: {
        200: jsonResponse(z.object({ id: z.string() }).passthrough(), "Handed over"),
        ...errorResponses,
      },
    }),
    async (c) => {
      requireRole(c, "operator");
      const ctx = authedCtx(c, deps);
      const { alertId } = c.req.valid("param");
      const body = c.req.valid("json");
      await handOver(deps.db, ctx, alertId, body.toUserId, body.note);
      deps.scheduler.nudge();
      return c.json(await getAlert(deps.db, ctx, alertId), 200);
    },
  );

  // Server-sent events: not described by a JSON schema, so a plain route.
  app.get("/alerts/stream", async (c) => {
    const actor = requireActor(c);
    const raw = c.req.header("last-event-id") ?? c.req.query("after");
    let resume: number | null = null;
    if (raw !== undefined) {
      if (!/^\d{1,15}$/.test(raw)) {
        throw new AppError(
          "bad_request",
          "Last-Event-ID (or after) must be an event id from this stream",
        );
      }
      resume = Number(raw);
    }
    return streamAlerts(c, deps.db, actor, resume, deps.alerting.streams);
  });

  return app;
}
