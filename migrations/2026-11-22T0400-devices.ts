// Home devices, what they send (readings, events, quarantined messages), and the alerts they raise.
// Frozen: never import app code.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("instance_keys")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("devices")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("serial", "text", (c) => c.notNull())
    .addColumn("heartbeat_interval_s", "integer", (c) => c.notNull())
    .addColumn("secret_hash", "text", (c) => c.notNull())
    .addColumn("mosquitto_hash", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("connection", "text", (c) => c.notNull().defaultTo("never"))
    .addColumn("last_seen_at", "text")
    .addColumn("battery", "double precision")
    .addColumn("rssi", "double precision")
    .addColumn("created_by", "text", (c) => c.references("users.id"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("secret_rotated_at", "text", (c) => c.notNull())
    .addColumn("revoked_at", "text")
    .execute();
  await db.schema.createIndex("devices_resident_idx").on("devices").column("resident_id").execute();
  await db.schema
    .createIndex("devices_serial_idx")
    .on("devices")
    .columns(["model", "serial"])
    .execute();

  // Which resident a device served when: readings belong to the resident of their own time.
  await db.schema
    .createTable("device_assignments")
    .addColumn("device_id", "text", (c) => c.notNull().references("devices.id"))
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("from_at", "text", (c) => c.notNull())
    .addColumn("to_at", "text")
    .addPrimaryKeyConstraint("device_assignments_pk", ["device_id", "from_at"])
    .execute();

  await db.schema
    .createTable("readings")
    .addColumn("resident_id", "text", (c) => c.notNull())
    .addColumn("device_id", "text", (c) => c.notNull())
    .addColumn("msg_id", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("value", "double precision", (c) => c.notNull())
    .addColumn("unit", "text", (c) => c.notNull())
    .addColumn("measured_at", "text", (c) => c.notNull())
    .addColumn("received_at", "text", (c) => c.notNull())
    // (device, msgId) recognises a device's retry as a duplicate, whatever its MQTT packet id.
    .addPrimaryKeyConstraint("readings_pk", ["device_id", "msg_id", "type"])
    .execute();
  await db.schema
    .createIndex("readings_resident_type_time_idx")
    .on("readings")
    .columns(["resident_id", "type", "measured_at"])
    .execute();

  await db.schema
    .createTable("device_events")
    .addColumn("resident_id", "text", (c) => c.notNull())
    .addColumn("device_id", "text", (c) => c.notNull())
    .addColumn("msg_id", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("occurred_at", "text", (c) => c.notNull())
    .addColumn("received_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("device_events_pk", ["device_id", "msg_id"])
    .execute();
  await db.schema
    .createIndex("device_events_resident_time_idx")
    .on("device_events")
    .columns(["resident_id", "occurred_at"])
    .execute();

  await db.schema
    .createTable("quarantine")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("device_id", "text")
    .addColumn("topic", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("detail", "text")
    .addColumn("payload", "text", (c) => c.notNull())
    .addColumn("received_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("quarantine_time_idx")
    .on("quarantine")
    .column("received_at")
    .execute();

  await db.schema
    .createTable("alerts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("resident_id", "text", (c) => c.notNull().references("residents.id"))
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("severity", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("source_type", "text", (c) => c.notNull())
    .addColumn("source_id", "text")
    .addColumn("open_key", "text")
    .addColumn("summary", "text", (c) => c.notNull())
    .addColumn("details", "text")
    .addColumn("opened_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .addColumn("acknowledged_at", "text")
    .addColumn("acknowledged_by", "text", (c) => c.references("users.id"))
    .addColumn("closed_at", "text")
    .addColumn("closed_by", "text", (c) => c.references("users.id"))
    .addColumn("close_reason", "text")
    .execute();
  await db.schema
    .createIndex("alerts_resident_idx")
    .on("alerts")
    .columns(["resident_id", "opened_at"])
    .execute();
  // At most one open alert per resident and key (one SOS, one alert per vital type, per device...):
  // a second SOS while one is open joins it instead of opening another.
  await db.schema
    .createIndex("alerts_open_key_idx")
    .on("alerts")
    .columns(["resident_id", "open_key"])
    .unique()
    .where(sql<boolean>`closed_at is null`)
    .execute();
  await db.schema
    .createIndex("alerts_status_idx")
    .on("alerts")
    .columns(["status", "opened_at"])
    .execute();

  await db.schema
    .createTable("alert_timeline")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("alert_id", "text", (c) => c.notNull().references("alerts.id"))
    .addColumn("at", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("actor_user_id", "text", (c) => c.references("users.id"))
    .addColumn("details", "text")
    .execute();
  await db.schema
    .createIndex("alert_timeline_alert_idx")
    .on("alert_timeline")
    .columns(["alert_id", "at"])
    .execute();

  // Where each vital of each resident stands against its rule, between readings.
  await db.schema
    .createTable("vital_states")
    .addColumn("resident_id", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("level", "text", (c) => c.notNull())
    .addColumn("outside_count", "integer", (c) => c.notNull())
    .addColumn("outside_since", "text")
    .addColumn("updated_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("vital_states_pk", ["resident_id", "type"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    "vital_states",
    "alert_timeline",
    "alerts",
    "quarantine",
    "device_events",
    "readings",
    "device_assignments",
    "devices",
    "instance_keys",
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
