import { createRoute } from "@hono/zod-openapi";
import { authedCtx, requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { CredentialsSchema, DeviceSchema, NewDeviceSchema } from "./devices.schemas";
import {
  authorizeDevice,
  listResidentDevices,
  mosquittoPasswordLines,
  presentDevice,
  reassignDevice,
  registerDevice,
  revokeDevice,
  rotateSecret,
} from "./devices.service";

const tags = ["Devices"];
const ResidentParams = z.object({ residentId: z.string().max(64) });
const DeviceParams = z.object({ deviceId: z.string().max(64) });

export function devicesRoutes(deps: AppDeps) {
  const app = createRouter();
  const link = deps.devices;

  // Before /devices/{deviceId}, which would otherwise take this path.
  app.openapi(
    createRoute({
      method: "get",
      path: "/devices/mosquitto-passwords",
      tags: ["Devices (operators)"],
      summary: "Every active device's credentials in Mosquitto's password-file format",
      responses: {
        200: {
          description: "text/plain, one `deviceId:hash` line per device",
          content: { "text/plain": { schema: z.string() } },
        },
        ...errorResponses,
      },
    }),
    async (c) => {
      requireRole(c, "operator");
      const lines = await mosquittoPasswordLines(deps.db);
      return c.text(lines.map((l) => `${l}\n`).join(""), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/devices",
      tags,
      summary: "Register a device for a resident; its credentials are shown only in this answer",
      request: { params: ResidentParams, ...jsonBody(NewDeviceSchema) },
      responses: {
        201: jsonResponse(
          z.object({ device: DeviceSchema, credentials: CredentialsSchema }),
          "Registered",
        ),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await registerDevice(
          deps.db,
          authedCtx(c, deps),
          link.hasher,
          link.endpoint,
          c.req.valid("param").residentId,
          c.req.valid("json"),
        ),
        201,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/devices",
      tags,
      summary: "A resident's devices, with battery and when each was last heard from",
      request: { params: ResidentParams },
      responses: {
        200: jsonResponse(z.object({ items: z.array(DeviceSchema) }), "Devices"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        {
          items: await listResidentDevices(
            deps.db,
            authedCtx(c, deps),
            c.req.valid("param").residentId,
          ),
        },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/devices/{deviceId}",
      tags,
      summary: "One device",
      request: { params: DeviceParams },
      responses: { 200: jsonResponse(DeviceSchema, "The device"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        presentDevice(
          await authorizeDevice(
            deps.db,
            authedCtx(c, deps).actor,
            c.req.valid("param").deviceId,
            "viewDevices",
          ),
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/devices/{deviceId}/rotate",
      tags,
      summary: "Give a device a new secret; the old one stops working at once",
      request: { params: DeviceParams },
      responses: {
        200: jsonResponse(CredentialsSchema, "New credentials, shown only now"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { deviceId } = c.req.valid("param");
      const creds = await rotateSecret(
        deps.db,
        authedCtx(c, deps),
        link.hasher,
        link.endpoint,
        deviceId,
      );
      link.deviceChanged(deviceId, { disconnect: true });
      return c.json(creds, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/devices/{deviceId}/revoke",
      tags,
      summary: "Revoke a device: it can no longer connect",
      request: { params: DeviceParams },
      responses: { 200: jsonResponse(DeviceSchema, "Revoked"), ...errorResponses },
    }),
    async (c) => {
      const { deviceId } = c.req.valid("param");
      const device = await revokeDevice(deps.db, authedCtx(c, deps), deviceId);
      link.deviceChanged(deviceId, { disconnect: true });
      return c.json(device, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/devices/{deviceId}/reassign",
      tags,
      summary: "Move a device to another resident; earlier readings stay with the first",
      request: {
        params: DeviceParams,
        ...jsonBody(z.strictObject({ residentId: z.string().min(1).max(64) })),
      },
      responses: { 200: jsonResponse(DeviceSchema, "Moved"), ...errorResponses },
    }),
    async (c) => {
      const { deviceId } = c.req.valid("param");
      const device = await reassignDevice(
        deps.db,
        authedCtx(c, deps),
        deviceId,
        c.req.valid("json").residentId,
      );
      link.deviceChanged(deviceId, { disconnect: false });
      return c.json(device, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/quarantine",
      tags: ["Devices (operators)"],
      summary: "Device messages kept aside as malformed, newest first, with counts by reason",
      request: {
        query: z.object({
          deviceId: z.string().max(64).optional(),
          reason: z.string().max(40).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
          cursor: z.string().max(64).optional(),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({
            counts: z
              .record(z.string(), z.number().int())
              .openapi({ description: "All quarantined messages by reason" }),
            items: z.array(
              z.object({
                id: z.string(),
                deviceId: z.string().nullable(),
                topic: z.string(),
                reason: z.string(),
                detail: z.string().nullable(),
                payload: z.string(),
                receivedAt: z.string(),
              }),
            ),
            nextCursor: z.string().nullable(),
          }),
          "Quarantined messages",
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      requireRole(c, "operator");
      const q = c.req.valid("query");
      let query = deps.db.selectFrom("quarantine").selectAll();
      if (q.deviceId) query = query.where("device_id", "=", q.deviceId);
      if (q.reason) query = query.where("reason", "=", q.reason);
      if (q.cursor) query = query.where("id", "<", q.cursor);
      const rows = await query
        .orderBy("id", "desc")
        .limit(q.limit + 1)
        .execute();
      const page = rows.slice(0, q.limit);
      const counts = await deps.db
        .selectFrom("quarantine")
        .select(["reason", (eb) => eb.fn.countAll<number>().as("n")])
        .groupBy("reason")
        .execute();
      return c.json(
        {
          counts: Object.fromEntries(counts.map((r) => [r.reason, Number(r.n)])),
          items: page.map((r) => ({
            id: r.id,
            deviceId: r.device_id,
            topic: r.topic,
            reason: r.reason,
            detail: r.detail,
            payload: r.payload,
            receivedAt: r.received_at,
          })),
          nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
        },
        200,
      );
    },
  );

  return app;
}
