import type { Generated, Selectable } from "kysely";

export const channels = ["push", "sms"] as const;
export type Channel = (typeof channels)[number];

/**
 * pending: written, not yet sent · sending: claimed by a run · retrying: a transient failure,
 * tried again later · sent: accepted by Twilio or the push service · queued/delivered/
 * undelivered: Twilio's later word on it · failed: given up · skipped: not sent, with the
 * reason (unconfirmed number, no subscription, quiet hours) · capped/bundled: held back by
 * the per-recipient limits · cancelled: the alert was acknowledged before it left · outbox: SMS
 * is not configured, the text waits in the outbox.
 */
export type DeliveryStatus =
  | "pending"
  | "sending"
  | "retrying"
  | "sent"
  | "queued"
  | "delivered"
  | "undelivered"
  | "failed"
  | "skipped"
  | "capped"
  | "bundled"
  | "cancelled"
  | "outbox";

export interface DeliveriesTable {
  id: string;
  /** What the message is for: alert_step, alert_repeat, alert_handled, alert_bundle, phone_code, ... */
  purpose: string;
  alert_id: string | null;
  step: number | null;
  severity: string | null;
  user_id: string | null;
  phone: string | null;
  subscription_id: string | null;
  recipient_name: string | null;
  channel: Channel;
  dedupe_key: string | null;
  status: DeliveryStatus;
  /** The message as JSON: template name and its parameters; rendered at send time. */
  message: string;
  provider_ref: string | null;
  error_code: string | null;
  error_reason: string | null;
  attempts: Generated<number>;
  claim_fence: number | null;
  created_at: string;
  updated_at: string;
  sent_at: string | null;
}
export type DeliveryRow = Selectable<DeliveriesTable>;

export interface PushSubscriptionsTable {
  id: string;
  user_id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  user_agent: string | null;
  created_at: string;
  last_success_at: string | null;
}
export type PushSubscriptionRow = Selectable<PushSubscriptionsTable>;

export interface PhoneNumbersTable {
  phone: string;
  confirmed_at: string | null;
  opted_out_at: string | null;
  code_hash: string | null;
  code_expires_at: string | null;
  code_attempts: Generated<number>;
  invited_at: string | null;
  language: string | null;
  created_at: string;
  updated_at: string;
}
export type PhoneNumberRow = Selectable<PhoneNumbersTable>;

export interface SmsOutboxTable {
  id: string;
  delivery_id: string;
  to_phone: string;
  body: string;
  created_at: string;
}
