import { createRoute } from "@hono/zod-openapi";
import { authedCtx, requireActor } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import {
  CarePlanSchema,
  CarePlanUpdateSchema,
  CarePlanVersionSchema,
  defaultCarePlan,
} from "./careplans.schemas";
import { planHistory, readCurrentPlan, readPlanVersion, updatePlan } from "./careplans.service";

const tags = ["Care plans"];
const Params = z.object({ residentId: z.string().max(64) });

const HistorySchema = z.object({
  items: z.array(
    z.object({
      version: z.number().int(),
      changes: z.array(z.string()),
      summary: z.string().nullable(),
      createdAt: z.string(),
      createdBy: z.object({ id: z.string(), displayName: z.string() }).nullable(),
    }),
  ),
});

export function carePlanRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/care-plan-defaults",
      tags,
      summary: "The plan a new resident starts with",
      responses: { 200: jsonResponse(CarePlanSchema, "Defaults"), ...errorResponses },
    }),
    (c) => {
      requireActor(c);
      return c.json(defaultCarePlan(), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/care-plan",
      tags,
      summary: "The current care plan (reads are audited)",
      request: { params: Params },
      responses: {
        200: jsonResponse(CarePlanVersionSchema, "The current version"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await readCurrentPlan(deps.db, authedCtx(c, deps), c.req.valid("param").residentId),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/residents/{residentId}/care-plan",
      tags,
      summary: "Save a new version of the care plan",
      request: { params: Params, ...jsonBody(CarePlanUpdateSchema) },
      responses: {
        200: jsonResponse(CarePlanVersionSchema, "The new current version"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await updatePlan(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").residentId,
          c.req.valid("json"),
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/care-plan/versions",
      tags,
      summary: "Who changed which sections of the plan, and when",
      request: { params: Params },
      responses: { 200: jsonResponse(HistorySchema, "History, newest first"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        { items: await planHistory(deps.db, authedCtx(c, deps), c.req.valid("param").residentId) },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/care-plan/versions/{version}",
      tags,
      summary: "One past version of the plan",
      request: { params: Params.extend({ version: z.coerce.number().int().min(1) }) },
      responses: { 200: jsonResponse(CarePlanVersionSchema, "That version"), ...errorResponses },
    }),
    async (c) => {
      const { residentId, version } = c.req.valid("param");
      return c.json(await readPlanVersion(deps.db, authedCtx(c, deps), residentId, version), 200);
    },
  );

  return app;
}
