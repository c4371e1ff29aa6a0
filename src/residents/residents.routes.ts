import { createRoute } from "@hono/zod-openapi";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { Email, Password, Phone } from "../validation";
import {
  AccessNotesSchema,
  AccessNotesUpdateSchema,
  CreateResidentSchema,
  HealthSchema,
  HealthUpdateSchema,
  ResidentListQuery,
  ResidentSchema,
  StatusChangeSchema,
  UpdateResidentSchema,
} from "./residents.schemas";
import {
  changeStatus,
  confirmResident,
  createResident,
  createResidentAccount,
  getResident,
  listVisibleResidents,
  readAccessNotes,
  readHealth,
  updateProfile,
  writeAccessNotes,
  writeHealth,
} from "./residents.service";

const tags = ["Residents"];
const Params = z.object({ residentId: z.string().max(64) });

export function residentsRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents",
      tags,
      summary: "The residents I may see (operators: all, with filters)",
      request: { query: ResidentListQuery },
      responses: {
        200: jsonResponse(z.object({ items: z.array(ResidentSchema) }), "Residents"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        { items: await listVisibleResidents(deps.db, authedCtx(c, deps), c.req.valid("query")) },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents",
      tags,
      summary:
        "Register a resident (a family member registering a parent becomes its primary; an operator confirms)",
      request: jsonBody(CreateResidentSchema),
      responses: { 201: jsonResponse(ResidentSchema, "Registered"), ...errorResponses },
    }),
    async (c) =>
      c.json(await createResident(deps.db, authedCtx(c, deps), c.req.valid("json")), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}",
      tags,
      summary: "A resident's profile (without health or access notes)",
      request: { params: Params },
      responses: { 200: jsonResponse(ResidentSchema, "The resident"), ...errorResponses },
    }),
    async (c) =>
      c.json(await getResident(deps.db, authedCtx(c, deps), c.req.valid("param").residentId), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/residents/{residentId}",
      tags,
      summary: "Change a resident's profile",
      request: { params: Params, ...jsonBody(UpdateResidentSchema) },
      responses: { 200: jsonResponse(ResidentSchema, "Updated"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await updateProfile(
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
      path: "/residents/{residentId}/health",
      tags,
      summary: "Medical notes and allergies (every read is audited)",
      request: { params: Params },
      responses: { 200: jsonResponse(HealthSchema, "Health notes"), ...errorResponses },
    }),
    async (c) =>
      c.json(await readHealth(deps.db, authedCtx(c, deps), c.req.valid("param").residentId), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/residents/{residentId}/health",
      tags,
      summary: "Change medical notes or allergies",
      request: { params: Params, ...jsonBody(HealthUpdateSchema) },
      responses: { 200: jsonResponse(HealthSchema, "Updated"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await writeHealth(
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
      path: "/residents/{residentId}/access-notes",
      tags,
      summary: "Key safe, door code (every reveal is audited)",
      request: { params: Params },
      responses: { 200: jsonResponse(AccessNotesSchema, "Access notes"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await readAccessNotes(deps.db, authedCtx(c, deps), c.req.valid("param").residentId),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/residents/{residentId}/access-notes",
      tags,
      summary: "Set the access notes",
      request: { params: Params, ...jsonBody(AccessNotesUpdateSchema) },
      responses: { 200: jsonResponse(AccessNotesSchema, "Updated"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await writeAccessNotes(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").residentId,
          c.req.valid("json").accessNotes,
        ),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/confirm",
      tags,
      summary: "Confirm a resident registered by a family member (operators)",
      request: { params: Params },
      responses: { 200: jsonResponse(ResidentSchema, "Confirmed"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await confirmResident(deps.db, authedCtx(c, deps), c.req.valid("param").residentId),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/status",
      tags,
      summary: "Pause (in hospital, away), resume, or archive (operators) a resident",
      request: { params: Params, ...jsonBody(StatusChangeSchema) },
      responses: { 200: jsonResponse(ResidentSchema, "Changed"), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await changeStatus(
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
      method: "post",
      path: "/residents/{residentId}/account",
      tags,
      summary: "Create the resident's own login",
      request: {
        params: Params,
        ...jsonBody(
          z
            .strictObject({ email: Email.optional(), phone: Phone.optional(), password: Password })
            .refine((v) => v.email || v.phone, {
              message: "give an email address or a phone number",
              path: ["email"],
            }),
        ),
      },
      responses: {
        201: jsonResponse(z.object({ userId: z.string() }), "Created"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await createResidentAccount(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").residentId,
          c.req.valid("json"),
        ),
        201,
      ),
  );

  return app;
}
