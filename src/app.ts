// createApp(deps): the whole HTTP surface, composed in one place.
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { accountsRoutes } from "./accounts/accounts.routes";
import { usersRoutes } from "./accounts/users.routes";
import { alertsRoutes } from "./alerts/alerts.routes";
import { auditRoutes } from "./audit/audit.routes";
import { bookingsRoutes } from "./bookings/bookings.routes";
import { carePlanRoutes } from "./careplans/careplans.routes";
import { catalogRoutes } from "./catalog/catalog.routes";
import { circleRoutes } from "./circles/circles.routes";
import { migrationsApplied } from "./db/migrator";
import { devicesRoutes } from "./devices/devices.routes";
import { AppError, type ErrorCode } from "./errors";
import { ackPageRoutes } from "./escalation/ack-page";
import { escalationRoutes } from "./escalation/escalation.routes";
import { authenticate } from "./http/auth.middleware";
import type { AppDeps } from "./http/context";
import { docsRoutes } from "./http/docs";
import { createRouter } from "./http/router";
import { newId } from "./ids";
import { walletRoutes } from "./ledger/wallet.routes";
import { needsRoutes } from "./needs/needs.routes";
import { notificationsRoutes } from "./notifications/notifications.routes";
import { twilioRoutes } from "./notifications/twilio.routes";
import { providersRoutes } from "./providers/providers.routes";
import { workersRoutes } from "./providers/workers.routes";
import { residentsRoutes } from "./residents/residents.routes";
import { reviewsRoutes } from "./reviews/reviews.routes";
import { settingsRoutes } from "./settings/settings.routes";
import { visitReportsRoutes } from "./visits/reports.routes";
import { visitsRoutes } from "./visits/visits.routes";
import { vitalsRoutes } from "./vitals/vitals.routes";

const REQUEST_ID = /^[\w-]{1,128}$/;

export function createApp(deps: AppDeps) {
  const app = createRouter();

  app.use(requestId({ headerName: "x-request-id", generator: () => newId(), limitLength: 128 }));
  app.use(async (c, next) => {
    // requestId() also keeps ids with "="; keep only tidy ones so logs stay easy to search.
    if (!REQUEST_ID.test(c.var.requestId)) {
      c.set("requestId", newId());
      c.header("x-request-id", c.var.requestId);
    }
    const logger = deps.logger.child({ requestId: c.var.requestId });
    c.set("logger", logger);
    const started = performance.now();
    await next();
    // Path only: query strings may carry one-time tokens.
    c.var.logger.info(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      "request",
    );
  });
  app.use(
    bodyLimit({
      maxSize: deps.config.MAX_BODY_BYTES,
      onError: () => {
        throw new AppError(
          "payload_too_large",
          `the request body is larger than ${deps.config.MAX_BODY_BYTES} bytes`,
        );
      },
    }),
  );

  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? "";
    let appError: AppError;
    if (err instanceof AppError) appError = err;
    else if (err instanceof HTTPException) appError = fromHttpException(err);
    else {
      (c.get("logger") ?? deps.logger).error({ err }, "unhandled error");
      appError = new AppError(
        "internal",
        "something went wrong on our side; the request id helps us find it",
      );
    }
    if (appError.status >= 500 && err instanceof AppError) {
      (c.get("logger") ?? deps.logger).error({ err }, "request failed");
    }
    const body = {
      error: {
        code: appError.code,
        message: appError.message,
        ...(appError.details ? { details: appError.details } : {}),
        requestId,
      },
    };
    for (const [k, v] of Object.entries(appError.headers ?? {})) c.header(k, v);
    c.header("x-request-id", requestId);
    return c.json(body, appError.status);
  });

  app.notFound((c) => {
    const error = new AppError("not_found", `no route for ${c.req.method} ${c.req.path}`);
    return c.json(
      { error: { code: error.code, message: error.message, requestId: c.get("requestId") ?? "" } },
      404,
    );
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    try {
      if (!(await migrationsApplied(deps.db))) {
        return c.json({ status: "not_ready", reason: "migrations are not applied" }, 503);
      }
      return c.json({ status: "ready", database: deps.dialect });
    } catch {
      return c.json({ status: "not_ready", reason: "the database is not reachable" }, 503);
    }
  });

  app.route("/", ackPageRoutes(deps));
  app.use("/v1/*", authenticate(deps));
  app.route("/v1", accountsRoutes(deps));
  app.route("/v1", usersRoutes(deps));
  app.route("/v1", residentsRoutes(deps));
  app.route("/v1", circleRoutes(deps));
  app.route("/v1", carePlanRoutes(deps));
  app.route("/v1", auditRoutes(deps));
  app.route("/v1", settingsRoutes(deps));
  app.route("/v1", devicesRoutes(deps));
  // Before the alert routes: /alerts/stream must not be taken for an alert id.
  app.route("/v1", escalationRoutes(deps));
  app.route("/v1", alertsRoutes(deps));
  app.route("/v1", notificationsRoutes(deps));
  app.route("/v1", twilioRoutes(deps));
  app.route("/v1", walletRoutes(deps));
  app.route("/v1", bookingsRoutes(deps));
  app.route("/v1", needsRoutes(deps));
  app.route("/v1", vitalsRoutes(deps));
  app.route("/v1", providersRoutes(deps));
  app.route("/v1", workersRoutes(deps));
  app.route("/v1", catalogRoutes(deps));
  app.route("/v1", reviewsRoutes(deps));
  app.route("/v1", visitsRoutes(deps));
  app.route("/v1", visitReportsRoutes(deps));

  docsRoutes(app, deps);
  return app;
}

export type App = ReturnType<typeof createApp>;

function fromHttpException(err: HTTPException): AppError {
  if (err.status === 400 && /json/i.test(err.message)) {
    return new AppError("malformed_json", "the request body is not valid JSON");
  }
  const byStatus: Partial<Record<number, ErrorCode>> = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    413: "payload_too_large",
    415: "unsupported_media_type",
  };
  const code = byStatus[err.status] ?? (err.status >= 500 ? "internal" : "bad_request");
  const message =
    code === "unsupported_media_type"
      ? "send the body as JSON with Content-Type: application/json"
      : err.message || code.replace(/_/g, " ");
  return new AppError(code, message);
}
