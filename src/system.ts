// Builds the whole of kincare from its configuration: database, migrations, scheduler, device
// ingest and broker, HTTP app. main.ts runs it; tests build it with a fake clock and their own
// database. start() begins serving jobs and devices; stop() ends them in order.
import type { Agent } from "node:https";
import { ensureOperator } from "./accounts/accounts.service";
import { createApp } from "./app";
import { registerBookingJobs } from "./bookings/bookings.routes";
import type { Clock } from "./clock";
import type { Config } from "./config";
import { type OpenedDatabase, openDatabase } from "./db/database";
import { migrateToLatest } from "./db/migrator";
import { sweepActivity } from "./devices/activity";
import { type EmbeddedBroker, startEmbeddedBroker } from "./devices/broker";
import { loadSecretHasher } from "./devices/credentials";
import { sweepSilentDevices } from "./devices/device-health";
import { type ExternalLink, startExternalLink } from "./devices/external";
import { Ingest } from "./devices/ingest";
import { commandPayload, type DeviceLink } from "./devices/link";
import { topicFor } from "./devices/protocol";
import { loadAckLinks } from "./escalation/ack-links";
import type { AckEffects } from "./escalation/acknowledge";
import { registerEscalationJobs } from "./escalation/steps";
import { registerCoreJobs } from "./jobs/core-jobs";
import { defineRecurring } from "./jobs/recurring";
import { Scheduler } from "./jobs/scheduler";
import type { Logger } from "./logger";
import { registerNeedJobs } from "./needs/needs.routes";
import { outboxChannel, pushChannel, twilioChannel } from "./notifications/channels";
import { registerDeliveryJobs } from "./notifications/deliver";
import { getSettings } from "./settings/settings.service";
import { registerVisitJobs } from "./visits/watch";
import { vitalsRollupJob } from "./vitals/rollup";

export interface SystemOptions {
  clock: Clock;
  logger: Logger;
  /** An already opened database (tests); otherwise the one DATABASE_URL names. */
  database?: OpenedDatabase;
  /** Scheduler poll interval; defaults to JOBS_POLL_MS. */
  pollMs?: number;
  /** The HTTPS agent web push goes through (tests trust their local push service with it). */
  pushAgent?: Agent;
}

export type System = Awaited<ReturnType<typeof createSystem>>;

export async function createSystem(config: Config, options: SystemOptions) {
  const { clock, logger } = options;
  const database =
    options.database ?? openDatabase(config.database, { poolSize: config.DATABASE_POOL_SIZE });
  const { db, dialect } = database;
  try {
    const applied = (await migrateToLatest(db)) ?? [];
    for (const m of applied) logger.info({ migration: m.migrationName }, "migration applied");
  } catch (error) {
    await database.close();
    throw error;
  }
  if (config.BOOTSTRAP_OPERATOR_EMAIL && config.BOOTSTRAP_OPERATOR_PASSWORD) {
    const { created } = await ensureOperator(db, clock.now(), {
      email: config.BOOTSTRAP_OPERATOR_EMAIL,
      password: config.BOOTSTRAP_OPERATOR_PASSWORD,
    });
    if (created) logger.info("bootstrap operator account created");
  }

  const scheduler = new Scheduler({
    db,
    dialect,
    clock,
    logger: logger.child({ part: "jobs" }),
    pollMs: options.pollMs ?? config.JOBS_POLL_MS,
    concurrency: config.JOBS_CONCURRENCY,
  });
  await registerCoreJobs(scheduler, db);
  await defineRecurring(scheduler, db, {
    kind: "devices.silence_sweep",
    everyMs: 60_000,
    async run(ctx) {
      const raised = await ctx.db
        .transaction()
        .execute((trx) => sweepSilentDevices(trx, ctx.clock.now()));
      if (raised > 0) ctx.logger.info({ raised }, "devices fell silent");
    },
  });
  await defineRecurring(scheduler, db, vitalsRollupJob);

  await defineRecurring(scheduler, db, {
    kind: "residents.activity_sweep",
    everyMs: 60_000,
    async run(ctx) {
      await sweepActivity(ctx.db, ctx.clock.now());
    },
  });

  // Alerts that reach a person: SMS (or the outbox), web push, the signed acknowledgement links.
  const sms =
    config.TWILIO_ACCOUNT_SID && config.TWILIO_AUTH_TOKEN && config.TWILIO_FROM
      ? twilioChannel({
          accountSid: config.TWILIO_ACCOUNT_SID,
          authToken: config.TWILIO_AUTH_TOKEN,
          from: config.TWILIO_FROM,
          apiUrl: config.TWILIO_API_URL,
        })
      : outboxChannel;
  if (!sms.enabled) {
    logger.warn(
      "SMS is disabled (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM are not set): " +
        "texts are kept in the outbox, GET /v1/notifications/outbox",
    );
  }
  const push = await pushChannel(db, {
    publicKey: config.VAPID_PUBLIC_KEY,
    privateKey: config.VAPID_PRIVATE_KEY,
    subject: config.VAPID_SUBJECT ?? `mailto:operators@${new URL(config.PUBLIC_URL).hostname}`,
    agent: options.pushAgent,
  });
  const links = await loadAckLinks(db, config.PUBLIC_URL);
  registerDeliveryJobs(scheduler, {
    sms,
    push,
    links,
    publicUrl: config.PUBLIC_URL,
    onEscalateNow: () => scheduler.nudge(),
  });
  await registerEscalationJobs(scheduler, db, () => scheduler.nudge());
  await registerBookingJobs(scheduler, db);
  registerNeedJobs(scheduler);
  await registerVisitJobs(scheduler, db);
  const ackEffects: AckEffects = {
    sendDeviceAck(deviceId, alertId, byName) {
      link
        .sendCommand(deviceId, "sos_ack", { alertId, by: byName })
        .catch((error: Error) =>
          mqttLogger.warn({ err: error, deviceId }, "could not tell a device that help is coming"),
        );
    },
    nudge: () => scheduler.nudge(),
  };

  const hasher = await loadSecretHasher(db);
  let broker: EmbeddedBroker | undefined;
  let external: ExternalLink | undefined;
  const topicPrefix = config.MQTT_TOPIC_PREFIX;
  const mqttLogger = logger.child({ part: "mqtt" });

  const link: DeviceLink = {
    hasher,
    endpoint: { url: "", topicPrefix },
    deviceChanged(deviceId, { disconnect }) {
      ingest.forgetDevice(deviceId);
      if (disconnect) broker?.disconnect(deviceId);
    },
    residentChanged(residentId) {
      ingest.forgetResident(residentId);
    },
    async sendCommand(deviceId, type, fields) {
      const { cmdId, payload } = commandPayload(type, fields);
      const carrier = broker ?? external;
      if (!carrier) throw new Error("the MQTT side is not running");
      await carrier.publish(topicFor(topicPrefix, deviceId, "cmd"), payload, 1);
      return cmdId;
    },
  };

  const ingest = new Ingest({
    db,
    clock,
    logger: mqttLogger,
    hasher,
    topicPrefix,
    settings: async () => ({
      sosCancelWindowS: (await getSettings(db))["alerts.sos_cancel_window_s"],
    }),
    onCommitted(effects) {
      if (effects.raised.length > 0) scheduler.nudge();
      // Tell each pressing device its alarm reached kincare (a person's acknowledgement comes later).
      for (const sos of effects.sosReceived) {
        link
          .sendCommand(sos.deviceId, "sos_received", { alertId: sos.alertId, msgId: sos.msgId })
          .catch((error: Error) =>
            mqttLogger.warn(
              { err: error, deviceId: sos.deviceId },
              "could not tell a device its SOS arrived",
            ),
          );
      }
    },
  });

  const streams = new AbortController();
  const alerting = { sms, push, links, ack: ackEffects, streams: streams.signal };
  const app = createApp({ config, db, dialect, logger, clock, scheduler, devices: link, alerting });

  return {
    config,
    db,
    dialect,
    clock,
    logger,
    scheduler,
    ingest,
    link,
    alerting,
    app,
    get broker() {
      return broker;
    },
    /** Opens the MQTT side and starts running jobs (tests may start either alone). */
    async start(parts: { devices?: boolean; jobs?: boolean } = {}) {
      if (parts.devices ?? true) await this.startDevices();
      if (parts.jobs ?? true) await scheduler.start();
    },
    /** The MQTT side alone: the embedded broker, or the sessions on the external broker. */
    async startDevices() {
      if (config.MQTT_URL) {
        external = await startExternalLink({
          url: config.MQTT_URL,
          username: config.MQTT_USERNAME,
          password: config.MQTT_PASSWORD,
          clientId: config.MQTT_CLIENT_ID,
          sharedGroup: config.MQTT_SHARED_GROUP,
          telemetryConnections: config.MQTT_INGEST_CONNECTIONS,
          topicPrefix,
          ingest,
          logger: mqttLogger,
        });
        link.endpoint.url = config.MQTT_PUBLIC_URL ?? config.MQTT_URL;
        return;
      }
      broker = await startEmbeddedBroker({
        host: config.MQTT_HOST,
        port: config.MQTT_PORT,
        topicPrefix,
        ingest,
        logger: mqttLogger,
      });
      const publicHost = new URL(config.PUBLIC_URL).hostname;
      link.endpoint.url = config.MQTT_PUBLIC_URL ?? `mqtt://${publicHost}:${broker.port}`;
      mqttLogger.info({ port: broker.port, topicPrefix }, "embedded MQTT broker is listening");
    },
    /** Closes the MQTT side; on an external broker the sessions stay unless told to end them. */
    async stopDevices(opts: { endMqttSessions?: boolean } = {}) {
      await external?.close({ endSessions: opts.endMqttSessions ?? false });
      external = undefined;
      await broker?.close();
      broker = undefined;
      await ingest.drain();
    },
    /** Ends the server-sent event streams (first step of a shutdown). */
    endStreams() {
      streams.abort();
    },
    async stop(opts: { endMqttSessions?: boolean } = {}) {
      streams.abort();
      await this.stopDevices(opts);
      await ingest.stop();
      await scheduler.stop();
      await database.close();
    },
  };
}
