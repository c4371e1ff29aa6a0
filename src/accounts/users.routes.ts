// Operator administration of accounts: find, create, roles, sessions, password resets, disabling.
import { createRoute } from "@hono/zod-openapi";
import { recordAudit } from "../audit/audit.service";
import { iso } from "../clock";
import { AppError, notFound } from "../errors";
import { requireRole } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import {
  findUserById,
  grantRole,
  revokeRole,
  revokeSessions,
  rolesOf,
} from "./accounts.repository";
import { NewUserFields, RoleSchema, SessionSchema, UserSchema } from "./accounts.schemas";
import {
  createUser,
  getUser,
  issuePasswordReset,
  listSessions,
  publicUser,
  revokeSession,
} from "./accounts.service";

const tags = ["Users (operators)"];
const UserParam = z.object({ userId: z.string().max(64) });

export function usersRoutes(deps: AppDeps) {
  const app = createRouter();
  const ctxOf = (c: Parameters<typeof requireRole>[0]) => ({
    now: deps.clock.now(),
    actor: requireRole(c, "operator"),
    requestId: c.get("requestId"),
  });

  app.openapi(
    createRoute({
      method: "get",
      path: "/users",
      tags,
      summary: "Find accounts by name, email or phone",
      request: {
        query: z.object({
          q: z.string().max(120).optional(),
          role: RoleSchema.optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          offset: z.coerce.number().int().min(0).default(0),
        }),
      },
      responses: {
        200: jsonResponse(z.object({ items: z.array(UserSchema) }), "Accounts"),
        ...errorResponses,
      },
    }),
    async (c) => {
      ctxOf(c);
      const { q, role, limit, offset } = c.req.valid("query");
      let query = deps.db.selectFrom("users").selectAll("users");
      if (q) {
        const like = `%${q.toLowerCase()}%`;
        query = query.where((eb) =>
          eb.or([
            eb(eb.fn("lower", ["display_name"]), "like", like),
            eb("email", "like", like),
            eb("phone", "like", like),
          ]),
        );
      }
      if (role) {
        query = query.where(
          "id",
          "in",
          deps.db.selectFrom("user_roles").select("user_id").where("role", "=", role),
        );
      }
      const rows = await query.orderBy("display_name").limit(limit).offset(offset).execute();
      const items = await Promise.all(
        rows.map(async (r) => publicUser(r, await rolesOf(deps.db, r.id))),
      );
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/users",
      tags,
      summary: "Create an account with roles (another operator, a provider admin, a worker)",
      request: jsonBody(
        z
          .strictObject({ ...NewUserFields, roles: z.array(RoleSchema).min(1) })
          .refine((v) => v.email || v.phone, {
            message: "give an email address or a phone number",
            path: ["email"],
          }),
      ),
      responses: { 201: jsonResponse(UserSchema, "Created"), ...errorResponses },
    }),
    async (c) => {
      const ctx = ctxOf(c);
      const { roles, ...input } = c.req.valid("json");
      const unique = [...new Set(roles)];
      const user = await deps.db
        .transaction()
        .execute((trx) => createUser(trx, ctx, input, unique));
      return c.json(publicUser(user, unique.sort()), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/users/{userId}",
      tags,
      summary: "One account",
      request: { params: UserParam },
      responses: { 200: jsonResponse(UserSchema, "The account"), ...errorResponses },
    }),
    async (c) => {
      ctxOf(c);
      return c.json(await getUser(deps.db, c.req.valid("param").userId), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/users/{userId}/roles",
      tags,
      summary: "Set an account's roles (a daughter can also be a care worker)",
      request: { params: UserParam, ...jsonBody(z.strictObject({ roles: z.array(RoleSchema) })) },
      responses: { 200: jsonResponse(UserSchema, "Updated"), ...errorResponses },
    }),
    async (c) => {
      const ctx = ctxOf(c);
      const { userId } = c.req.valid("param");
      const wanted = new Set(c.req.valid("json").roles);
      if (userId === ctx.actor.userId && !wanted.has("operator")) {
        throw new AppError(
          "invalid_state",
          "you cannot remove your own operator role; ask another operator",
        );
      }
      await deps.db.transaction().execute(async (trx) => {
        if (!(await findUserById(trx, userId))) throw notFound("the user");
        const current = await rolesOf(trx, userId);
        for (const role of current) if (!wanted.has(role)) await revokeRole(trx, userId, role);
        for (const role of wanted)
          if (!current.includes(role))
            await grantRole(trx, userId, role, ctx.actor.userId, ctx.now);
        await recordAudit(
          trx,
          {
            actorUserId: ctx.actor.userId,
            action: "user.roles",
            entityType: "user",
            entityId: userId,
            requestId: ctx.requestId,
            details: { from: current, to: [...wanted] },
          },
          ctx.now,
        );
      });
      return c.json(await getUser(deps.db, userId), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/users/{userId}/password-reset",
      tags,
      summary: "Issue a one-time password reset link for someone who forgot their password",
      request: { params: UserParam },
      responses: {
        201: jsonResponse(
          z.object({ token: z.string(), url: z.string(), expiresAt: z.string() }),
          "Give the link to the account holder",
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      const ctx = ctxOf(c);
      return c.json(
        await issuePasswordReset(deps.db, ctx, c.req.valid("param").userId, deps.config.PUBLIC_URL),
        201,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/users/{userId}/sessions",
      tags,
      summary: "An account's live sessions",
      request: { params: UserParam },
      responses: {
        200: jsonResponse(z.object({ items: z.array(SessionSchema) }), "Sessions"),
        ...errorResponses,
      },
    }),
    async (c) => {
      ctxOf(c);
      return c.json(
        { items: await listSessions(deps.db, c.req.valid("param").userId, deps.clock.now()) },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/users/{userId}/sessions/{sessionId}",
      tags,
      summary: "Revoke one session of an account",
      request: { params: UserParam.extend({ sessionId: z.string().max(64) }) },
      responses: { 204: { description: "Revoked" }, ...errorResponses },
    }),
    async (c) => {
      const { userId, sessionId } = c.req.valid("param");
      await revokeSession(deps.db, ctxOf(c), userId, sessionId);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/users/{userId}/disable",
      tags,
      summary: "Disable an account: it cannot sign in and every session ends",
      request: { params: UserParam },
      responses: { 200: jsonResponse(UserSchema, "Disabled"), ...errorResponses },
    }),
    async (c) => {
      const ctx = ctxOf(c);
      const { userId } = c.req.valid("param");
      if (userId === ctx.actor.userId)
        throw new AppError("invalid_state", "you cannot disable your own account");
      await deps.db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable("users")
          .set({ disabled_at: iso(ctx.now) })
          .where("id", "=", userId)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) throw notFound("the user");
        await revokeSessions(trx, userId, ctx.now);
        await recordAudit(
          trx,
          {
            actorUserId: ctx.actor.userId,
            action: "user.disable",
            entityType: "user",
            entityId: userId,
            requestId: ctx.requestId,
          },
          ctx.now,
        );
      });
      return c.json(await getUser(deps.db, userId), 200);
    },
  );

  return app;
}
