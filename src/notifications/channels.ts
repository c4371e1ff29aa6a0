// The two ways out: SMS through the real twilio SDK, Web Push through the real web-push library.
// Each send either succeeds or throws a SendError that says whether trying again can help and
// what went wrong in words a person reads on the alert's timeline.
import type { Agent } from "node:https";
import twilio from "twilio";
import webpush from "web-push";
import type { Db } from "../db/database";
import { instanceKey } from "../db/instance-keys";

export class SendError extends Error {
  constructor(
    /** permanent: this address will not work (invalid, opted out, gone); transient: try again. */
    readonly kind: "permanent" | "transient",
    readonly code: string,
    readonly reason: string,
    /** The address itself is dead: remove the subscription, mark the number opted out. */
    readonly addressDead: "gone" | "opted_out" | null = null,
  ) {
    super(reason);
    this.name = "SendError";
  }
}

export interface SmsSend {
  to: string;
  body: string;
  statusCallback: string;
  validitySeconds: number;
}

export interface SmsChannel {
  readonly enabled: boolean;
  send(msg: SmsSend): Promise<{ sid: string; status: string }>;
  /** Checks the X-Twilio-Signature of a webhook. */
  validSignature(signature: string, url: string, params: Record<string, string>): boolean;
}

// Twilio error codes for numbers that will not take a text: no retry, the next channel at once.
const deadNumbers: Record<number, string> = {
  21211: "the number is not a valid phone number",
  21214: "the number cannot be reached",
  21408: "texts to this region are not enabled",
  21610: "the owner of this number has opted out of texts (replied STOP)",
  21612: "the number cannot receive texts from kincare's number",
  21614: "the number is not a mobile number",
  30003: "the phone is unreachable",
  30004: "the message was blocked",
  30005: "the number is unknown or no longer in service",
  30006: "the number is a landline or unreachable carrier",
  30007: "the carrier filtered the message",
};

export function twilioReason(code: number | string | undefined, fallback: string): string {
  const n = Number(code);
  return deadNumbers[n] ?? fallback;
}

export interface TwilioConfig {
  accountSid: string;
  authToken: string;
  from: string;
  apiUrl?: string | undefined;
}

export function twilioChannel(cfg: TwilioConfig): SmsChannel {
  const client = twilio(cfg.accountSid, cfg.authToken, { autoRetry: false });
  // TWILIO_API_URL points the SDK's Api domain elsewhere (the tests' local fake Twilio API).
  if (cfg.apiUrl) client.api.baseUrl = cfg.apiUrl.replace(/\/+$/, "");
  const sender = cfg.from.startsWith("MG") ? { messagingServiceSid: cfg.from } : { from: cfg.from };
  return {
    enabled: true,
    async send(msg) {
      try {
        const created = await client.messages.create({
          to: msg.to,
          body: msg.body,
          statusCallback: msg.statusCallback,
          validityPeriod: msg.validitySeconds,
          ...sender,
        });
        return { sid: created.sid, status: created.status };
      } catch (error) {
        throw twilioError(error);
      }
    },
    validSignature(signature, url, params) {
      return twilio.validateRequest(cfg.authToken, signature, url, params);
    },
  };
}

function twilioError(error: unknown): SendError {
  const e = error as { status?: number; code?: number; message?: string };
  if (typeof e.status === "number") {
    const code = String(e.code ?? e.status);
    const reason = twilioReason(e.code, `Twilio refused the text (${e.message ?? e.status})`);
    if (e.code === 21610) return new SendError("permanent", code, reason, "opted_out");
    if (e.code !== undefined && e.code in deadNumbers)
      return new SendError("permanent", code, reason);
    if (e.status === 429 || e.status >= 500) return new SendError("transient", code, reason);
    return new SendError("permanent", code, reason);
  }
  return new SendError(
    "transient",
    "network",
    `Twilio could not be reached (${(error as Error).message ?? "unknown error"})`,
  );
}

/** Without Twilio credentials: texts are kept in the outbox for operators, never lost. */
export const outboxChannel: SmsChannel = {
  enabled: false,
  send() {
    throw new Error("the outbox channel is written by the delivery runner, not sent");
  },
  validSignature() {
    return false;
  },
};

export interface PushSend {
  endpoint: string;
  p256dh: string;
  auth: string;
  payload: string;
  urgency: "very-low" | "low" | "normal" | "high";
  ttlSeconds: number;
  topic?: string;
}

export interface PushChannel {
  readonly publicKey: string;
  send(msg: PushSend): Promise<void>;
}

export interface VapidConfig {
  publicKey?: string | undefined;
  privateKey?: string | undefined;
  subject: string;
  /** An HTTPS agent (the tests trust their local push service's certificate with it). */
  agent?: Agent | undefined;
}

/** VAPID keys from the configuration, or made once and kept in the database. */
export async function pushChannel(db: Db, cfg: VapidConfig): Promise<PushChannel> {
  let keys = { publicKey: cfg.publicKey, privateKey: cfg.privateKey };
  if (!keys.publicKey || !keys.privateKey) {
    const stored = await instanceKey(db, "vapid", () =>
      JSON.stringify(webpush.generateVAPIDKeys()),
    );
    keys = JSON.parse(stored) as { publicKey: string; privateKey: string };
  }
  const vapidDetails = {
    subject: cfg.subject,
    publicKey: keys.publicKey!,
    privateKey: keys.privateKey!,
  };
  return {
    publicKey: vapidDetails.publicKey,
    async send(msg) {
      try {
        await webpush.sendNotification(
          { endpoint: msg.endpoint, keys: { p256dh: msg.p256dh, auth: msg.auth } },
          msg.payload,
          {
            vapidDetails,
            TTL: msg.ttlSeconds,
            urgency: msg.urgency,
            timeout: 10_000,
            ...(msg.topic ? { topic: msg.topic } : {}),
            ...(cfg.agent ? { agent: cfg.agent } : {}),
          },
        );
      } catch (error) {
        throw pushError(error);
      }
    },
  };
}

function pushError(error: unknown): SendError {
  const status = (error as { statusCode?: number }).statusCode;
  if (status === 404 || status === 410) {
    return new SendError(
      "permanent",
      String(status),
      "the push subscription no longer exists (removed)",
      "gone",
    );
  }
  if (status === undefined || status === 429 || status >= 500) {
    return new SendError(
      "transient",
      String(status ?? "network"),
      `the push service did not take the message (${status ?? (error as Error).message})`,
    );
  }
  return new SendError(
    "permanent",
    String(status),
    `the push service refused the message (${status})`,
  );
}
