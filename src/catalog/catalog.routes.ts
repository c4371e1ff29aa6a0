import { createRoute } from "@hono/zod-openapi";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import {
  NewServiceSchema,
  SearchQuery,
  SearchResultSchema,
  ServiceSchema,
  UpdateServiceSchema,
} from "./catalog.schemas";
import {
  createService,
  getService,
  listProviderServices,
  searchCatalog,
  updateService,
} from "./catalog.service";

const tags = ["Catalog"];
const ProviderParams = z.object({ providerId: z.string().max(64) });
const Params = z.object({ serviceId: z.string().max(64) });

export function catalogRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/catalog/search",
      tags,
      summary:
        "Search services for a resident: verified providers serving the resident's locality or covering them by radius, active services only",
      request: { query: SearchQuery },
      responses: {
        200: jsonResponse(SearchResultSchema, "One page of results"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(await searchCatalog(deps.db, authedCtx(c, deps), c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/providers/{providerId}/services",
      tags,
      summary: "Publish a service (the provider's admins)",
      request: { params: ProviderParams, ...jsonBody(NewServiceSchema) },
      responses: { 201: jsonResponse(ServiceSchema, "Published"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await createService(
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
      path: "/providers/{providerId}/services",
      tags,
      summary: "A provider's services (its admins and operators also see inactive ones)",
      request: { params: ProviderParams },
      responses: {
        200: jsonResponse(z.object({ items: z.array(ServiceSchema) }), "Services"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        {
          items: await listProviderServices(
            deps.db,
            authedCtx(c, deps),
            c.req.valid("param").providerId,
          ),
        },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/services/{serviceId}",
      tags,
      summary: "One service",
      request: { params: Params },
      responses: { 200: jsonResponse(ServiceSchema, "The service"), ...errorResponses },
    }),
    async (c) =>
      c.json(await getService(deps.db, authedCtx(c, deps), c.req.valid("param").serviceId), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/services/{serviceId}",
      tags,
      summary: "Change a service, or set it inactive (the provider's admins)",
      request: { params: Params, ...jsonBody(UpdateServiceSchema) },
      responses: { 200: jsonResponse(ServiceSchema, "Updated"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await updateService(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").serviceId,
          c.req.valid("json"),
        ),
        200,
      ),
  );

  return app;
}
