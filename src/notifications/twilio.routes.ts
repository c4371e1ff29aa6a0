// Twilio's webhooks: delivery status callbacks and inbound texts. Every request must carry a valid
// X-Twilio-Signature over kincare's public URL and the posted parameters, or it gets a 403.
import type { Context } from "hono";
import { addTimeline } from "../alerts/timeline";
import { iso } from "../clock";
import { AppError } from "../errors";
import { handleInboundSms } from "../escalation/sms-replies";
import type { AppDeps, AppEnv } from "../http/context";
import { createRouter } from "../http/router";
import { twilioReason } from "./channels";
import { afterStepFailure } from "./deliver";
import type { DeliveryStatus } from "./notifications.table";

async function signedParams(c: Context<AppEnv>, deps: AppDeps): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === "string") params[k] = v;
  const url = new URL(c.req.url);
  const signedUrl = `${deps.config.PUBLIC_URL}${url.pathname}${url.search}`;
  const signature = c.req.header("x-twilio-signature") ?? "";
  if (
    !deps.alerting.sms.enabled ||
    !deps.alerting.sms.validSignature(signature, signedUrl, params)
  ) {
    throw new AppError("forbidden", "the Twilio signature of this request is not valid");
  }
  return params;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function twiml(c: Context<AppEnv>, text: string | null) {
  const message = text ? `<Message>${escapeXml(text)}</Message>` : "";
  return c.body(`<?xml version="1.0" encoding="UTF-8"?><Response>${message}</Response>`, 200, {
    "content-type": "text/xml; charset=utf-8",
  });
}

// Twilio's statuses move forward; a late "sent" never overwrites "delivered".
const rank: Partial<Record<DeliveryStatus, number>> = {
  sending: 0,
  queued: 1,
  sent: 2,
  delivered: 3,
  undelivered: 3,
  failed: 3,
};
const twilioStatuses: Record<string, DeliveryStatus> = {
  accepted: "queued",
  queued: "queued",
  sending: "sent",
  sent: "sent",
  delivered: "delivered",
  undelivered: "undelivered",
  failed: "failed",
};

export function twilioRoutes(deps: AppDeps) {
  const app = createRouter();

  app.post("/webhooks/twilio/status/:deliveryId", async (c) => {
    const params = await signedParams(c, deps);
    const now = deps.clock.now();
    const status = twilioStatuses[params.MessageStatus ?? ""];
    const row = await deps.db
      .selectFrom("deliveries")
      .selectAll()
      .where("id", "=", c.req.param("deliveryId"))
      .executeTakeFirst();
    if (
      !row ||
      !status ||
      (params.MessageSid && row.provider_ref && row.provider_ref !== params.MessageSid)
    ) {
      return c.body(null, 204);
    }
    if ((rank[status] ?? 0) <= (rank[row.status] ?? 0) && status !== row.status) {
      return c.body(null, 204);
    }
    const failedNow = status === "failed" || status === "undelivered";
    const reason = failedNow
      ? twilioReason(
          params.ErrorCode,
          `the text was not delivered (error ${params.ErrorCode ?? "unknown"})`,
        )
      : null;
    await deps.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("deliveries")
        .set({
          status,
          updated_at: iso(now),
          ...(failedNow ? { error_code: params.ErrorCode ?? null, error_reason: reason } : {}),
        })
        .where("id", "=", row.id)
        .execute();
      if (row.alert_id && (status === "delivered" || failedNow)) {
        await addTimeline(
          trx,
          row.alert_id,
          now,
          failedNow ? "notification_failed" : "notification_delivered",
          null,
          {
            deliveryId: row.id,
            channel: "sms",
            recipient: row.recipient_name,
            ...(reason ? { reason } : {}),
          },
        );
      }
      if (failedNow && row.purpose === "alert_step") {
        await afterStepFailure(
          { db: trx, clock: deps.clock },
          { onEscalateNow: () => undefined },
          row,
        );
      }
    });
    if (failedNow) deps.scheduler.nudge();
    return c.body(null, 204);
  });

  app.post("/webhooks/twilio/inbound", async (c) => {
    const params = await signedParams(c, deps);
    if (!params.From) return twiml(c, null);
    const reply = await handleInboundSms(
      deps.db,
      deps.alerting.ack,
      { from: params.From, body: params.Body ?? "" },
      deps.clock.now(),
    );
    return twiml(c, reply.text);
  });

  return app;
}
