import { createRoute } from "@hono/zod-openapi";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import {
  NewWorkerSchema,
  UpdateWorkerSchema,
  WorkerSchema,
  WorkerStatusChangeSchema,
} from "./providers.schemas";
import {
  changeWorkerStatus,
  getWorker,
  listWorkers,
  registerWorker,
  updateWorker,
} from "./workers.service";

const tags = ["Workers"];
const ProviderParams = z.object({ providerId: z.string().max(64) });
const Params = z.object({ workerId: z.string().max(64) });

export function workersRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/providers/{providerId}/workers",
      tags,
      summary:
        "Register a worker by real name (the identity document number is stored encrypted and shown masked)",
      request: { params: ProviderParams, ...jsonBody(NewWorkerSchema) },
      responses: { 201: jsonResponse(WorkerSchema, "Registered"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await registerWorker(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").providerId,
          c.req.valid("json"),
        ),
        201,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/providers/{providerId}/workers",
      tags,
      summary: "The provider's workers (its admins and operators)",
      request: { params: ProviderParams },
      responses: {
        200: jsonResponse(z.object({ items: z.array(WorkerSchema) }), "Workers"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        {
          items: await listWorkers(deps.db, authedCtx(c, deps), c.req.valid("param").providerId),
        },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/workers/{workerId}",
      tags,
      summary: "One worker (its provider's admins, operators, and the worker themself)",
      request: { params: Params },
      responses: { 200: jsonResponse(WorkerSchema, "The worker"), ...errorResponses },
    }),
    async (c) =>
      c.json(await getWorker(deps.db, authedCtx(c, deps), c.req.valid("param").workerId), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/workers/{workerId}",
      tags,
      summary: "Change a worker's phone, photo, skills, certificates, background check or account",
      request: { params: Params, ...jsonBody(UpdateWorkerSchema) },
      responses: { 200: jsonResponse(WorkerSchema, "Updated"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await updateWorker(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").workerId,
          c.req.valid("json"),
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/workers/{workerId}/status",
      tags: ["Workers (operators)"],
      summary: "Verify or suspend a worker, with a reason (audited)",
      request: { params: Params, ...jsonBody(WorkerStatusChangeSchema) },
      responses: { 200: jsonResponse(WorkerSchema, "Changed"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await changeWorkerStatus(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").workerId,
          c.req.valid("json"),
        ),
        200,
      ),
  );

  return app;
}
