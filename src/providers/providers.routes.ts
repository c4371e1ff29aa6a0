import { createRoute } from "@hono/zod-openapi";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import {
  NewProviderSchema,
  ProviderListQuery,
  ProviderSchema,
  ProviderStatusChangeSchema,
  PublicProviderSchema,
  UpdateProviderSchema,
} from "./providers.schemas";
import {
  changeProviderStatus,
  getProvider,
  listMyProviders,
  listProvidersForOperator,
  signUpProvider,
  updateProvider,
} from "./providers.service";

const tags = ["Providers"];
const Params = z.object({ providerId: z.string().max(64) });

export function providersRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/providers",
      tags,
      summary: "Sign up an organisation (you become its admin); it waits for an operator",
      request: jsonBody(NewProviderSchema),
      responses: { 201: jsonResponse(ProviderSchema, "Signed up"), ...errorResponses },
    }),
    async (c) =>
      c.json(await signUpProvider(deps.db, authedCtx(c, deps), c.req.valid("json")), 201),
  );

  // Before /providers/{providerId}, which would otherwise take this path.
  app.openapi(
    createRoute({
      method: "get",
      path: "/providers/mine",
      tags,
      summary: "The providers I administer",
      responses: {
        200: jsonResponse(z.object({ items: z.array(ProviderSchema) }), "Providers"),
        ...errorResponses,
      },
    }),
    async (c) => c.json({ items: await listMyProviders(deps.db, authedCtx(c, deps)) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/providers",
      tags: ["Providers (operators)"],
      summary: "Every provider, by status (e.g. pending ones awaiting verification)",
      request: { query: ProviderListQuery },
      responses: {
        200: jsonResponse(z.object({ items: z.array(ProviderSchema) }), "Providers"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        {
          items: await listProvidersForOperator(deps.db, authedCtx(c, deps), c.req.valid("query")),
        },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/providers/{providerId}",
      tags,
      summary:
        "A provider: the full record for its admins and operators, the public profile for others (verified providers only)",
      request: { params: Params },
      responses: {
        200: jsonResponse(z.union([ProviderSchema, PublicProviderSchema]), "The provider"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(await getProvider(deps.db, authedCtx(c, deps), c.req.valid("param").providerId), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/providers/{providerId}",
      tags,
      summary: "Change the provider's profile, categories, service area, contact or on-call person",
      request: { params: Params, ...jsonBody(UpdateProviderSchema) },
      responses: { 200: jsonResponse(ProviderSchema, "Updated"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await updateProvider(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").providerId,
          c.req.valid("json"),
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/providers/{providerId}/status",
      tags: ["Providers (operators)"],
      summary: "Verify, reject or suspend a provider, with a reason (audited)",
      request: { params: Params, ...jsonBody(ProviderStatusChangeSchema) },
      responses: { 200: jsonResponse(ProviderSchema, "Changed"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await changeProviderStatus(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").providerId,
          c.req.valid("json"),
        ),
        200,
      ),
  );

  return app;
}
