// Sign-up, login, logout, the caller's own sessions, preferences and password.

import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import { parsePhoneNumberFromString } from "libphonenumber-js";
import { AppError } from "../errors";
import { authedCtx, requestCtx, requireActor, SESSION_COOKIE } from "../http/auth.middleware";
import type { AppDeps, AppEnv } from "../http/context";
import { createRouter, errorResponses, jsonBody, jsonResponse, z } from "../http/router";
import { Password, Phone } from "../validation";
import { revokeSessions } from "./accounts.repository";
import {
  AuthResultSchema,
  LoginSchema,
  PreferencesSchema,
  SessionSchema,
  SignUpSchema,
  UserSchema,
} from "./accounts.schemas";
import {
  changePassword,
  completePasswordReset,
  getUser,
  listSessions,
  login,
  revokeSession,
  type SessionMeta,
  type StartedSession,
  signUp,
  updatePreferences,
} from "./accounts.service";
import { resetWithCode, sendResetCode } from "./sms-reset";

const tags = ["Accounts"];

function sessionMeta(c: Context<AppEnv>): SessionMeta {
  const forwarded = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)
    ?.incoming;
  return {
    userAgent: c.req.header("user-agent") ?? null,
    ip: forwarded ?? incoming?.socket?.remoteAddress ?? null,
  };
}

function setSessionCookie(c: Context<AppEnv>, deps: AppDeps, session: StartedSession) {
  setCookie(c, SESSION_COOKIE, session.token, {
    httpOnly: true,
    sameSite: "Lax",
    secure: deps.config.PUBLIC_URL.startsWith("https:"),
    path: "/",
    expires: new Date(session.expiresAt),
  });
}

function parseLogin(login: string): { email?: string; phone?: string } {
  if (login.includes("@")) return { email: login.toLowerCase() };
  const phone = parsePhoneNumberFromString(login);
  if (!phone?.isValid()) {
    throw new AppError(
      "validation_failed",
      "the login is neither an email address nor a phone number with its country code",
      {
        issues: [
          {
            path: "login",
            message: "an email address, or a phone number such as +86 138 0013 8000",
          },
        ],
      },
    );
  }
  return { phone: phone.number };
}

export function accountsRoutes(deps: AppDeps) {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth/signup",
      tags,
      security: [],
      summary: "Sign up as a family member",
      request: jsonBody(SignUpSchema),
      responses: {
        201: jsonResponse(AuthResultSchema, "Signed up and signed in"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const result = await signUp(
        deps.db,
        requestCtx(c, deps),
        c.req.valid("json"),
        sessionMeta(c),
      );
      setSessionCookie(c, deps, result.session);
      return c.json(result, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth/login",
      tags,
      security: [],
      summary: "Sign in with email or phone and password",
      request: jsonBody(LoginSchema),
      responses: {
        200: jsonResponse(AuthResultSchema, "Signed in"),
        ...errorResponses,
        429: jsonResponse(
          z.object({}),
          "Too many failed logins: slowed down or locked (see Retry-After)",
        ),
      },
    }),
    async (c) => {
      const { login: who, password } = c.req.valid("json");
      const result = await login(
        deps.db,
        requestCtx(c, deps),
        { ...parseLogin(who), password },
        sessionMeta(c),
      );
      setSessionCookie(c, deps, result.session);
      return c.json(result, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth/logout",
      tags,
      summary: "End the current session",
      responses: { 204: { description: "Signed out" }, ...errorResponses },
    }),
    async (c) => {
      const actor = requireActor(c);
      await revokeSessions(deps.db, actor.userId, deps.clock.now(), { only: actor.sessionId });
      deleteCookie(c, SESSION_COOKIE, { path: "/" });
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/auth/sessions",
      tags,
      summary: "List my live sessions",
      responses: {
        200: jsonResponse(z.object({ items: z.array(SessionSchema) }), "Sessions"),
        ...errorResponses,
      },
    }),
    async (c) => {
      const actor = requireActor(c);
      return c.json(
        { items: await listSessions(deps.db, actor.userId, deps.clock.now(), actor.sessionId) },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/auth/sessions/{sessionId}",
      tags,
      summary: "Revoke one of my sessions (a lost phone, say)",
      request: { params: z.object({ sessionId: z.string().max(64) }) },
      responses: { 204: { description: "Revoked" }, ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      await revokeSession(deps.db, ctx, ctx.actor.userId, c.req.valid("param").sessionId);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth/password-reset",
      tags,
      security: [],
      summary: "Set a new password with a one-time reset token",
      request: jsonBody(
        z.strictObject({ token: z.string().min(10).max(200), newPassword: Password }),
      ),
      responses: {
        204: { description: "Password set; every session of the account has ended" },
        ...errorResponses,
      },
    }),
    async (c) => {
      await completePasswordReset(deps.db, requestCtx(c, deps), c.req.valid("json"));
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth/password-reset/sms",
      tags,
      security: [],
      summary: "Text a reset code to the confirmed phone of an account (if there is one)",
      request: jsonBody(z.strictObject({ phone: Phone })),
      responses: {
        202: { description: "If an account has this confirmed number, a code is on its way" },
        ...errorResponses,
      },
    }),
    async (c) => {
      await sendResetCode(deps.db, requestCtx(c, deps), c.req.valid("json").phone);
      deps.scheduler.nudge();
      return c.body(null, 202);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth/password-reset/sms/complete",
      tags,
      security: [],
      summary: "Set a new password with the code texted to my phone",
      request: jsonBody(
        z.strictObject({
          phone: Phone,
          code: z.string().regex(/^\d{6}$/, "six digits"),
          newPassword: Password,
        }),
      ),
      responses: {
        204: { description: "Password set; every session of the account has ended" },
        ...errorResponses,
      },
    }),
    async (c) => {
      await resetWithCode(
        deps.db,
        requestCtx(c, deps),
        c.req.valid("json"),
        deps.config.PUBLIC_URL,
      );
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/me",
      tags,
      summary: "Who am I",
      responses: { 200: jsonResponse(UserSchema, "The signed-in user"), ...errorResponses },
    }),
    async (c) => c.json(await getUser(deps.db, requireActor(c).userId), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/me",
      tags,
      summary:
        "Change my name and notification preferences (language, time zone, quiet hours, channels)",
      request: jsonBody(PreferencesSchema),
      responses: { 200: jsonResponse(UserSchema, "Updated"), ...errorResponses },
    }),
    async (c) => {
      const ctx = authedCtx(c, deps);
      return c.json(
        await updatePreferences(deps.db, ctx, ctx.actor.userId, c.req.valid("json")),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/me/password",
      tags,
      summary: "Change my password; my other sessions end",
      request: jsonBody(
        z.strictObject({ currentPassword: z.string().min(1).max(200), newPassword: Password }),
      ),
      responses: { 204: { description: "Changed" }, ...errorResponses },
    }),
    async (c) => {
      await changePassword(deps.db, authedCtx(c, deps), c.req.valid("json"));
      return c.body(null, 204);
    },
  );

  return app;
}
