import type { AppDeps } from "../http/context";
import { createRouter } from "../http/router";

export function circleRoutes(_deps: AppDeps) {
  const app = createRouter();
  return app;
}
