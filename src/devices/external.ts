// kincare as a client of an external MQTT broker (Mosquitto, EMQX, HiveMQ). Each connection is a
// persistent session (stable client id, clean: false, QoS 1), so what devices publish while
// kincare is down waits in the broker; each message is acknowledged only after its commit
// (mqtt.js handleMessage). Events and status have their own session, so an SOS never queues
// behind telemetry; telemetry is spread over several connections of one shared subscription,
// because each connection acknowledges in order, one message after another.
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "../logger";
import type { Ingest } from "./ingest";

export interface ExternalLink {
  publish(topic: string, payload: string, qos: 0 | 1): Promise<void>;
  close(opts?: { endSessions?: boolean }): Promise<void>;
}

export interface ExternalOptions {
  url: string;
  username: string | undefined;
  password: string | undefined;
  clientId: string;
  /** Several kincare processes share the device stream through $share/<group>/... */
  sharedGroup: string | undefined;
  telemetryConnections: number;
  topicPrefix: string;
  ingest: Ingest;
  logger: Logger;
}

export async function startExternalLink(o: ExternalOptions): Promise<ExternalLink> {
  const base = `${o.topicPrefix}/devices/+`;
  const share = (group: string | undefined, filter: string) =>
    group ? `$share/${group}/${filter}` : filter;
  const telemetryGroup =
    o.sharedGroup ?? (o.telemetryConnections > 1 ? `${o.clientId}-telemetry` : undefined);

  const sessions = [
    {
      clientId: `${o.clientId}-events`,
      topics: [`${base}/event`, `${base}/status`].map((f) => share(o.sharedGroup, f)),
    },
    ...Array.from({ length: o.telemetryConnections }, (_, i) => ({
      clientId: `${o.clientId}-telemetry-${i + 1}`,
      topics: [`${base}/telemetry`, `${base}/heartbeat`, `${base}/cmd/ack`].map((f) =>
        share(telemetryGroup, f),
      ),
    })),
  ];

  const clients: MqttClient[] = [];
  for (const session of sessions) clients.push(await connect(o, session.clientId, session.topics));
  const events = clients[0]!;
  o.logger.info(
    { url: redact(o.url), sessions: sessions.map((s) => s.clientId), sharedGroup: o.sharedGroup },
    "connected to the external MQTT broker",
  );

  return {
    publish: async (topic, payload, qos) => {
      await events.publishAsync(topic, payload, { qos });
    },
    close: async ({ endSessions = false } = {}) => {
      await Promise.all(clients.map((c) => c.endAsync()));
      if (endSessions) {
        // A clean connection with the same client id discards the stored session (tests tidy up).
        for (const session of sessions) {
          const c = await mqtt.connectAsync(o.url, {
            ...auth(o),
            clientId: session.clientId,
            clean: true,
            reconnectPeriod: 0,
            protocolVersion: 4,
          });
          await c.endAsync();
        }
      }
    },
  };
}

function auth(o: ExternalOptions): Pick<IClientOptions, "username" | "password"> {
  return {
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
  };
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}

async function connect(
  o: ExternalOptions,
  clientId: string,
  topics: string[],
): Promise<MqttClient> {
  const logger = o.logger.child({ clientId });
  const client = mqtt.connect(o.url, {
    ...auth(o),
    clientId,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
  });
  // Set before the first CONNACK: a stored session delivers its messages right after it.
  // Acknowledge a message only once it is committed; on an error it stays unacknowledged and the
  // broker sends it again on this session's next connection.
  client.handleMessage = (packet, callback) => {
    o.ingest.submit(packet.topic, packet.payload as Buffer).then(
      () => callback(),
      (error: Error) => {
        logger.error(
          { err: error },
          "a device message could not be stored; reconnecting so the broker sends it again",
        );
        client.stream.destroy();
      },
    );
  };
  client.on("error", (error) => logger.warn({ err: error }, "MQTT connection error"));
  client.on("reconnect", () => logger.info("reconnecting to the MQTT broker"));
  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error) => {
      client.end(true);
      reject(
        new Error(
          `cannot connect to the MQTT broker at MQTT_URL (${redact(o.url)}): ${error.message}`,
        ),
      );
    };
    client.once("connect", () => {
      client.off("error", fail);
      resolve();
    });
    client.once("error", fail);
  });
  client.on("connect", (connack) => {
    // A broker that lost our session (restarted without persistence) needs the subscriptions again.
    if (!connack.sessionPresent) {
      void client
        .subscribeAsync(topics, { qos: 1 })
        .catch((e: Error) => logger.error({ err: e }, "subscribe failed"));
    }
  });
  const granted = await client.subscribeAsync(topics, { qos: 1 });
  const refused = granted.filter((g) => g.qos === 128);
  if (refused.length > 0) {
    throw new Error(
      `the MQTT broker refused kincare's subscriptions (${refused.map((g) => g.topic).join(", ")}): check MQTT_USERNAME and the broker's ACL`,
    );
  }
  return client;
}
