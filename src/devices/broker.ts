// The embedded MQTT broker (aedes), used when no external broker is configured. It checks device
// credentials at connect, lets a device publish only under its own topic root and subscribe only to
// its own cmd topic, and stores each message inside the publish hook, which runs before the PUBACK:
// a device is acknowledged only for what is committed.
import { createServer, type Server } from "node:net";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import type { Logger } from "../logger";
import type { Ingest } from "./ingest";
import { parseTopic, topicFor } from "./protocol";

export interface EmbeddedBroker {
  port: number;
  publish(topic: string, payload: string | Buffer, qos: 0 | 1): Promise<void>;
  /** Drops a device's connection (after its credentials were revoked or rotated). */
  disconnect(deviceId: string): void;
  close(): Promise<void>;
}

const deviceOf = new WeakMap<Client, string>();

function authError(message: string): AuthenticateError {
  // 5 = not authorized (MQTT 3.1.1 CONNACK return code).
  return Object.assign(new Error(message), { returnCode: 5 as const }) as AuthenticateError;
}

export async function startEmbeddedBroker(opts: {
  host: string;
  port: number;
  topicPrefix: string;
  ingest: Ingest;
  logger: Logger;
}): Promise<EmbeddedBroker> {
  const { ingest, logger, topicPrefix } = opts;
  const clients = new Map<string, Set<Client>>();

  const broker = await Aedes.createBroker({
    // A device's in-flight window is its own flow control: several packets of one socket read are
    // handled at once, and the next read waits for their commits.
    concurrency: 1000,
    authenticate(client, username, password, done) {
      if (!username || !password)
        return done(authError("a device id and secret are required"), false);
      ingest.authenticate(username, password.toString("utf8")).then(
        (ok) => {
          if (!ok) return done(authError("unknown device or wrong secret"), false);
          deviceOf.set(client, username);
          done(null, true);
        },
        (error: Error) => {
          logger.error({ err: error }, "checking device credentials failed");
          done(
            Object.assign(new Error("server unavailable"), {
              returnCode: 3 as const,
            }) as AuthenticateError,
            false,
          );
        },
      );
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null); // kincare's own publishes (commands to devices)
      const deviceId = deviceOf.get(client);
      const parsed = parseTopic(topicPrefix, packet.topic);
      if (!deviceId || !parsed || parsed.deviceId !== deviceId) {
        logger.warn(
          { deviceId, topic: packet.topic.slice(0, 200) },
          "a device published outside its own topic root",
        );
        return done(new Error("not authorized"));
      }
      // Events are never retained: a retained SOS would be replayed to every new subscriber.
      if (parsed.channel === "event" && packet.retain) packet.retain = false;
      ingest.submit(packet.topic, packet.payload as Buffer).then(
        () => done(null),
        (error: Error) => done(error),
      );
    },
    authorizeSubscribe(client, subscription, done) {
      const deviceId = deviceOf.get(client);
      if (deviceId && subscription.topic === topicFor(topicPrefix, deviceId, "cmd"))
        return done(null, subscription);
      logger.warn(
        { deviceId, topic: subscription.topic.slice(0, 200) },
        "a device subscribed outside its own cmd topic",
      );
      return done(new Error("not authorized"));
    },
  });

  // "client" comes before the CONNACK ("clientReady" only after the session is restored).
  broker.on("client", (client) => {
    const deviceId = deviceOf.get(client);
    if (!deviceId) return;
    const set = clients.get(deviceId) ?? new Set<Client>();
    set.add(client);
    clients.set(deviceId, set);
  });
  broker.on("clientDisconnect", (client) => {
    const deviceId = deviceOf.get(client);
    if (deviceId) clients.get(deviceId)?.delete(client);
  });
  broker.on("clientError", (client, error) => {
    logger.debug({ deviceId: deviceOf.get(client), err: error }, "device connection error");
  });

  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        error.code === "EADDRINUSE"
          ? new Error(
              `MQTT_PORT ${opts.port} is already in use: set MQTT_PORT to a free port, or MQTT_URL to use an external broker`,
            )
          : error,
      );
    });
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;

  return {
    port,
    publish: (topic, payload, qos) =>
      new Promise<void>((resolve, reject) => {
        broker.publish(
          {
            cmd: "publish",
            topic,
            payload: typeof payload === "string" ? Buffer.from(payload) : payload,
            qos,
            retain: false,
            dup: false,
          },
          (error?: Error) => (error ? reject(error) : resolve()),
        );
      }),
    disconnect(deviceId) {
      for (const client of clients.get(deviceId) ?? []) client.close();
      clients.delete(deviceId);
    },
    close: async () => {
      // The broker closes every device connection first; the listener can then finish closing.
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
