import { createRoute } from "@hono/zod-openapi";
import { recordAudit } from "../audit/audit.service";
import { requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse } from "../http/router";
import {
  getSettings,
  settingsPatchSchema,
  settingsSchema,
  updateSettings,
} from "./settings.service";

const tags = ["Settings (operators)"];

export function settingsRoutes(deps: AppDeps) {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: "get",
      path: "/settings",
      tags,
      summary: "Business policies in force",
      responses: {
        200: jsonResponse(settingsSchema.openapi("Settings"), "Settings"),
        ...errorResponses,
      },
    }),
    async (c) => {
      requireRole(c, "operator");
      return c.json(await getSettings(deps.db), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "patch",
      path: "/settings",
      tags,
      summary: "Change business policies",
      request: jsonBody(settingsPatchSchema.openapi("SettingsPatch")),
      responses: { 200: jsonResponse(settingsSchema, "Settings now in force"), ...errorResponses },
    }),
    async (c) => {
      const actor = requireRole(c, "operator");
      const patch = c.req.valid("json");
      const now = deps.clock.now();
      const settings = await deps.db.transaction().execute(async (trx) => {
        const updated = await updateSettings(trx, patch, actor.userId, now);
        await recordAudit(
          trx,
          {
            actorUserId: actor.userId,
            action: "settings.update",
            entityType: "settings",
            requestId: c.get("requestId"),
            details: patch,
          },
          now,
        );
        return updated;
      });
      return c.json(settings, 200);
    },
  );
  return app;
}
