import type { AppDeps } from "../http/context";
import { createRouter } from "../http/router";

export function auditRoutes(_deps: AppDeps) {
  const app = createRouter();
  return app;
}
