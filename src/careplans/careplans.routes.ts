import type { AppDeps } from "../http/context";
import { createRouter } from "../http/router";

export function carePlanRoutes(_deps: AppDeps) {
  const app = createRouter();
  return app;
}
