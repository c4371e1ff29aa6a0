import { createRoute } from "@hono/zod-openapi";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { Relationship } from "../residents/residents.schemas";
import { Email, Phone } from "../validation";
import {
  acceptInvitation,
  changeMember,
  invite,
  listCircle,
  listInvitations,
  previewInvitation,
  removeMember,
  revokeInvitation,
} from "./circles.service";
import { circleLevels } from "./circles.table";

const tags = ["Family circles"];
const Params = z.object({ residentId: z.string().max(64) });
const MemberParams = Params.extend({ userId: z.string().max(64) });
const Level = z.enum(circleLevels).openapi("CircleLevel", {
  description:
    "primary: manages the circle, books and pays, edits the care plan; member: sees and gets alerts",
});

const MemberSchema = z
  .object({
    userId: z.string(),
    displayName: z.string(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
    relationship: z.string(),
    level: Level,
    canBook: z
      .boolean()
      .openapi({ description: "May book and cancel services (primaries always may)" }),
    since: z.string(),
  })
  .openapi("CircleMember");

const InvitationSchema = z
  .object({
    id: z.string(),
    residentId: z.string(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
    relationship: z.string(),
    level: Level,
    status: z.enum(["pending", "accepted", "revoked", "expired"]),
    invitedBy: z.string(),
    createdAt: z.string(),
    expiresAt: z.string(),
    acceptedAt: z.string().nullable(),
  })
  .openapi("Invitation");

const TokenBody = z.strictObject({ token: z.string().min(10).max(200) });

export function circleRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/circle",
      tags,
      summary: "The family circle",
      request: { params: Params },
      responses: {
        200: jsonResponse(z.object({ items: z.array(MemberSchema) }), "Members"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        { items: await listCircle(deps.db, authedCtx(c, deps), c.req.valid("param").residentId) },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/residents/{residentId}/circle/{userId}",
      tags,
      summary: "Change a member's level, relationship, or whether they may book services",
      request: {
        params: MemberParams,
        ...jsonBody(
          z.strictObject({
            level: Level.optional(),
            relationship: Relationship.optional(),
            canBook: z.boolean().optional(),
          }),
        ),
      },
      responses: {
        200: jsonResponse(z.object({ items: z.array(MemberSchema) }), "The circle now"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { residentId, userId } = c.req.valid("param");
      return c.json(
        {
          items: await changeMember(
            deps.db,
            authedCtx(c, deps),
            residentId,
            userId,
            c.req.valid("json"),
          ),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/residents/{residentId}/circle/{userId}",
      tags,
      summary: "Remove a member, or leave the circle yourself",
      request: { params: MemberParams },
      responses: { 204: { description: "Removed" }, ...errorResponses },
    }),
    async (c) => {
      const { residentId, userId } = c.req.valid("param");
      await removeMember(deps.db, authedCtx(c, deps), residentId, userId);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/residents/{residentId}/invitations",
      tags,
      summary: "Invite a relative by email or phone; share the returned link (single use, expires)",
      request: {
        params: Params,
        ...jsonBody(
          z
            .strictObject({
              email: Email.optional(),
              phone: Phone.optional(),
              relationship: Relationship,
              level: Level.default("member"),
            })
            .refine((v) => v.email || v.phone, {
              message: "give the email address or phone number to invite",
              path: ["email"],
            }),
        ),
      },
      responses: {
        201: jsonResponse(
          z.object({ invitation: InvitationSchema, token: z.string(), link: z.string() }),
          "Created; the token is shown only now",
        ),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        await invite(
          deps.db,
          authedCtx(c, deps),
          c.req.valid("param").residentId,
          c.req.valid("json"),
          deps.config.PUBLIC_URL,
        ),
        201,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/residents/{residentId}/invitations",
      tags,
      summary: "Invitations sent for this resident",
      request: { params: Params },
      responses: {
        200: jsonResponse(z.object({ items: z.array(InvitationSchema) }), "Invitations"),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        {
          items: await listInvitations(
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
      method: "delete",
      path: "/residents/{residentId}/invitations/{invitationId}",
      tags,
      summary: "Withdraw a pending invitation",
      request: { params: Params.extend({ invitationId: z.string().max(64) }) },
      responses: { 204: { description: "Withdrawn" }, ...errorResponses },
    }),
    async (c) => {
      const { residentId, invitationId } = c.req.valid("param");
      await revokeInvitation(deps.db, authedCtx(c, deps), residentId, invitationId);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/invitations/preview",
      tags,
      security: [],
      summary: "What an invitation link is for (no sign-in needed)",
      request: jsonBody(TokenBody),
      responses: {
        200: jsonResponse(
          z.object({
            residentName: z.string(),
            invitedBy: z.string(),
            relationship: z.string(),
            level: Level,
            status: z.enum(["pending", "accepted", "revoked", "expired"]),
            expiresAt: z.string(),
          }),
          "The invitation",
        ),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(await previewInvitation(deps.db, deps.clock.now(), c.req.valid("json").token), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/invitations/accept",
      tags,
      summary: "Accept an invitation with the signed-in account",
      request: jsonBody(TokenBody),
      responses: {
        200: jsonResponse(
          z.object({ residentId: z.string(), level: Level, relationship: z.string() }),
          "Joined",
        ),
        ...errorResponses,
        410: jsonResponse(z.object({}), "Expired, withdrawn or already used"),
      },
    }),
    async (c) =>
      c.json(await acceptInvitation(deps.db, authedCtx(c, deps), c.req.valid("json").token), 200),
  );

  return app;
}
