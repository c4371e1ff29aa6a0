// Resolves the session (bearer token or cookie) into `c.var.actor`, and guards cookie-authenticated
// writes against cross-site requests by checking Origin.
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { authenticateToken } from "../accounts/accounts.service";
import type { Role } from "../accounts/accounts.table";
import { AppError, forbidden, unauthenticated } from "../errors";
import type { RequestCtx } from "../request-ctx";
import type { Actor, AppDeps, AppEnv } from "./context";

export const SESSION_COOKIE = "kincare_session";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function authenticate(deps: AppDeps): MiddlewareHandler<AppEnv> {
  const publicOrigin = new URL(deps.config.PUBLIC_URL).origin;
  return async (c, next) => {
    c.set("actor", null);
    c.set("authVia", null);
    const header = c.req.header("authorization");
    let token: string | undefined;
    let via: "bearer" | "cookie" | null = null;
    if (header) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match)
        throw new AppError("unauthenticated", "the Authorization header must be 'Bearer <token>'");
      token = match[1];
      via = "bearer";
    } else {
      token = getCookie(c, SESSION_COOKIE);
      if (token) via = "cookie";
    }
    if (token && via) {
      if (via === "cookie" && !SAFE_METHODS.has(c.req.method)) {
        const origin = c.req.header("origin");
        const own = new URL(c.req.url).origin;
        if (!origin || (origin !== publicOrigin && origin !== own)) {
          throw new AppError(
            "origin_rejected",
            "a cookie-authenticated write must come from kincare's own pages (the Origin header did not match)",
          );
        }
      }
      const session = await authenticateToken(deps.db, token, deps.clock.now());
      if (session) {
        c.set("actor", session satisfies Actor);
        c.set("authVia", via);
        c.set("logger", c.var.logger.child({ userId: session.userId }));
      } else if (via === "bearer") {
        throw new AppError(
          "unauthenticated",
          "the session has ended or the token is not valid: sign in again",
        );
      }
    }
    await next();
  };
}

/** The signed-in actor, or a 401. */
export function requireActor(c: Context<AppEnv>): Actor {
  const actor = c.get("actor");
  if (!actor) throw unauthenticated();
  return actor;
}

/** The signed-in actor holding one of the roles, or a 401/403. */
export function requireRole(c: Context<AppEnv>, ...roles: Role[]): Actor {
  const actor = requireActor(c);
  if (!roles.some((r) => actor.roles.includes(r))) {
    throw forbidden(`this needs the ${roles.join(" or ")} role`);
  }
  return actor;
}

export function requestCtx(c: Context<AppEnv>, deps: AppDeps): RequestCtx {
  return { now: deps.clock.now(), actor: c.get("actor"), requestId: c.get("requestId") };
}

export function authedCtx(c: Context<AppEnv>, deps: AppDeps): RequestCtx & { actor: Actor } {
  return { now: deps.clock.now(), actor: requireActor(c), requestId: c.get("requestId") };
}
