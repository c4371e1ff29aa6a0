import { createRoute } from "@hono/zod-openapi";
import { requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonResponse, z } from "../http/router";
import { Instant } from "../validation";
import { queryAudit } from "./audit.service";

const EntrySchema = z
  .object({
    id: z.string(),
    at: z.string(),
    actorUserId: z.string().nullable(),
    action: z.string(),
    entityType: z.string(),
    entityId: z.string().nullable(),
    residentId: z.string().nullable(),
    requestId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("AuditEntry");

export function auditRoutes(deps: AppDeps) {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: "get",
      path: "/audit",
      tags: ["Audit (operators)"],
      summary: "Query the audit log by resident, actor, action and time, newest first",
      request: {
        query: z.object({
          residentId: z.string().max(64).optional(),
          actorUserId: z.string().max(64).optional(),
          action: z.string().max(100).optional(),
          from: Instant.optional(),
          to: Instant.optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
          cursor: z.string().max(64).optional(),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({ items: z.array(EntrySchema), nextCursor: z.string().nullable() }),
          "Entries",
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      requireRole(c, "operator");
      const { cursor, ...q } = c.req.valid("query");
      return c.json(
        await queryAudit(deps.db, { ...q, ...(cursor ? { before: cursor } : {}) }),
        200,
      );
    },
  );
  return app;
}
