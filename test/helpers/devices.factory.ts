import mqtt, { type MqttClient } from "mqtt";
import type { TestApp } from "./test-app";

export interface Registered {
  id: string;
  secret: string;
  topicRoot: string;
  commandTopic: string;
}

export async function registerDevice(
  t: TestApp,
  token: string,
  residentId: string,
  body: Record<string, unknown> = {},
): Promise<Registered> {
  const res = await t.request("POST", `/v1/residents/${residentId}/devices`, {
    token,
    body: {
      kind: "sos_pendant",
      model: "KP-1",
      serial: `SN${Math.random().toString(36).slice(2, 10)}`,
      heartbeatIntervalS: 60,
      ...body,
    },
  });
  if (res.status !== 201)
    throw new Error(`device registration failed: ${res.status} ${JSON.stringify(res.body)}`);
  const c = res.body.credentials;
  return {
    id: c.deviceId,
    secret: c.secret,
    topicRoot: c.mqtt.topicRoot,
    commandTopic: c.mqtt.commandTopic,
  };
}

/** Connects as a device over TCP, like a real one: username = device id, password = secret. */
export async function connectDevice(
  t: TestApp,
  device: Pick<Registered, "id" | "secret" | "topicRoot">,
  opts: mqtt.IClientOptions = {},
): Promise<MqttClient> {
  return mqtt.connectAsync(t.mqttUrl!, {
    username: device.id,
    password: device.secret,
    clientId: `${device.id}-${Math.random().toString(36).slice(2, 6)}`,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...opts,
  });
}

export function telemetry(
  t: TestApp,
  msgId: string,
  readings: unknown[],
  ts: number | string = t.clock.now().getTime(),
) {
  return JSON.stringify({ msgId, ts, readings });
}

export function event(
  t: TestApp,
  msgId: string,
  type: string,
  ts: number | string = t.clock.now().toISOString(),
) {
  return JSON.stringify({ msgId, ts, type });
}

/** Resolves with the next message on a topic the client subscribed to. */
export function nextMessage(
  client: MqttClient,
  topic: string,
  timeoutMs = 5_000,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no message on ${topic} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      clearTimeout(timer);
      client.off("message", onMessage);
      resolve(JSON.parse(payload.toString()));
    };
    client.on("message", onMessage);
  });
}

/** CI's second run sets MQTT_URL: devices then talk to that broker (Mosquitto), not the embedded one. */
export const usingExternalBroker = Boolean(process.env.MQTT_URL);

/**
 * Publishes as a device and returns once kincare has the message. On the embedded broker the
 * PUBACK itself means committed; an external broker acknowledges on its own, so wait for kincare.
 */
export async function publish(
  t: TestApp,
  client: MqttClient,
  topic: string,
  payload: string | Buffer,
  opts: mqtt.IClientPublishOptions = { qos: 1 },
): Promise<void> {
  const processed = usingExternalBroker ? t.system.ingest.waitProcessed(topic) : undefined;
  await client.publishAsync(topic, payload, opts);
  await processed;
}
