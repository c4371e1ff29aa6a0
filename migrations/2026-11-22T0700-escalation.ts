// Alerts that reach a person: escalation policies and the chain copied onto each alert, push
// subscriptions, phone numbers and their confirmation, every delivery attempt, the SMS outbox
// used when Twilio is not configured, the operator desk, and the ordered feed behind the
// server-sent events stream. Frozen: never import app code.
import { type Kysely, PostgresAdapter, sql } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  const isPostgres = db.getExecutor().adapter instanceof PostgresAdapter;

  // An ordered chain of tiers per resident; none stored means the default from the care plan.
  await db.schema
    .createTable("escalation_policies")
    .addColumn("resident_id", "text", (c) =>
      c.primaryKey().references("residents.id").onDelete("cascade"),
    )
    .addColumn("policy", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .addColumn("updated_by", "text", (c) => c.references("users.id"))
    .execute();

  // The chain as it was when the alert was raised; `step` is the next step to run (the fence of
  // every escalation job), `next_step_at` when it is due (the auditor's yardstick).
  await db.schema.alterTable("alerts").addColumn("chain", "text").execute();
  await db.schema
    .alterTable("alerts")
    .addColumn("step", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable("alerts").addColumn("next_step_at", "text").execute();
  await db.schema.alterTable("alerts").addColumn("code", "text").execute();
  await db.schema.alterTable("alerts").addColumn("acknowledged_via", "text").execute();
  await db.schema.alterTable("alerts").addColumn("acknowledged_phone", "text").execute();
  await db.schema
    .createIndex("alerts_open_code_idx")
    .on("alerts")
    .column("code")
    .unique()
    .where(sql<boolean>`closed_at is null`)
    .execute();
  await db.schema
    .createIndex("alerts_next_step_idx")
    .on("alerts")
    .columns(["status", "next_step_at"])
    .execute();

  await db.schema
    .createTable("push_subscriptions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("endpoint", "text", (c) => c.notNull().unique())
    .addColumn("p256dh", "text", (c) => c.notNull())
    .addColumn("auth", "text", (c) => c.notNull())
    .addColumn("user_agent", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("last_success_at", "text")
    .execute();
  await db.schema
    .createIndex("push_subscriptions_user_idx")
    .on("push_subscriptions")
    .column("user_id")
    .execute();

  // Every number kincare texts: confirmed by its owner (a code, or a reply to a first text)
  // before it receives alert texts; opted out when its owner sent STOP.
  await db.schema
    .createTable("phone_numbers")
    .addColumn("phone", "text", (c) => c.primaryKey())
    .addColumn("confirmed_at", "text")
    .addColumn("opted_out_at", "text")
    .addColumn("code_hash", "text")
    .addColumn("code_expires_at", "text")
    .addColumn("code_attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("invited_at", "text")
    .addColumn("language", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();

  // One row per message per channel per recipient, written before the send.
  await db.schema
    .createTable("deliveries")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("alert_id", "text", (c) => c.references("alerts.id"))
    .addColumn("step", "integer")
    .addColumn("severity", "text")
    .addColumn("user_id", "text", (c) => c.references("users.id").onDelete("set null"))
    .addColumn("phone", "text")
    .addColumn("subscription_id", "text")
    .addColumn("recipient_name", "text")
    .addColumn("channel", "text", (c) => c.notNull())
    .addColumn("dedupe_key", "text", (c) => c.unique())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("message", "text", (c) => c.notNull())
    .addColumn("provider_ref", "text")
    .addColumn("error_code", "text")
    .addColumn("error_reason", "text")
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("claim_fence", "integer")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .addColumn("sent_at", "text")
    .execute();
  await db.schema.createIndex("deliveries_alert_idx").on("deliveries").column("alert_id").execute();
  await db.schema
    .createIndex("deliveries_user_idx")
    .on("deliveries")
    .columns(["user_id", "created_at"])
    .execute();
  await db.schema
    .createIndex("deliveries_phone_idx")
    .on("deliveries")
    .columns(["phone", "created_at"])
    .execute();
  await db.schema
    .createIndex("deliveries_provider_ref_idx")
    .on("deliveries")
    .column("provider_ref")
    .execute();

  // Texts kincare would have sent while SMS is not configured: never silently nowhere.
  await db.schema
    .createTable("sms_outbox")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("delivery_id", "text", (c) => c.notNull().references("deliveries.id"))
    .addColumn("to_phone", "text", (c) => c.notNull())
    .addColumn("body", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("desk_duty")
    .addColumn("user_id", "text", (c) => c.primaryKey().references("users.id").onDelete("cascade"))
    .addColumn("since", "text", (c) => c.notNull())
    .execute();

  // The ordered record of alert changes that every kincare process reads for its event streams.
  // An integer sequence has no common form across the two databases.
  await db.schema
    .createTable("alert_feed")
    .addColumn("seq", isPostgres ? "bigserial" : "integer", (c) =>
      isPostgres ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn("alert_id", "text", (c) => c.notNull())
    .addColumn("resident_id", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("at", "text", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    "alert_feed",
    "desk_duty",
    "sms_outbox",
    "deliveries",
    "phone_numbers",
    "push_subscriptions",
    "escalation_policies",
  ]) {
    await db.schema.dropTable(table).execute();
  }
  await db.schema.dropIndex("alerts_next_step_idx").execute();
  await db.schema.dropIndex("alerts_open_code_idx").execute();
  for (const column of [
    "acknowledged_phone",
    "acknowledged_via",
    "code",
    "next_step_at",
    "step",
    "chain",
  ]) {
    await db.schema.alterTable("alerts").dropColumn(column).execute();
  }
}
