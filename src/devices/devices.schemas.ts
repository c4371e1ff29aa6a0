import { z } from "@hono/zod-openapi";
import { deviceKinds } from "./devices.table";

export const DeviceKindSchema = z.enum(deviceKinds).openapi("DeviceKind");

export const NewDeviceSchema = z
  .strictObject({
    kind: DeviceKindSchema,
    model: z.string().trim().min(1).max(100),
    serial: z.string().trim().min(1).max(100),
    heartbeatIntervalS: z.number().int().min(10).max(86_400).default(300).openapi({
      description: "How often the device sends a heartbeat; silent for twice this is 'offline'",
    }),
  })
  .openapi("NewDevice");

export const DeviceSchema = z
  .object({
    id: z.string(),
    residentId: z.string(),
    kind: DeviceKindSchema,
    model: z.string(),
    serial: z.string(),
    heartbeatIntervalS: z.number().int(),
    status: z.enum(["active", "revoked"]),
    connection: z.enum(["never", "online", "offline"]),
    lastSeenAt: z.string().nullable(),
    battery: z.number().nullable(),
    rssi: z.number().nullable(),
    createdAt: z.string(),
    secretRotatedAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi("Device");

export const CredentialsSchema = z
  .object({
    deviceId: z.string(),
    secret: z.string().openapi({ description: "Shown only now: kincare keeps only a hash" }),
    mqtt: z.object({
      url: z.string(),
      protocolVersion: z.number().int(),
      username: z.string(),
      password: z.string(),
      topicRoot: z.string(),
      commandTopic: z.string(),
    }),
  })
  .openapi("DeviceCredentials");
