import type { AppDeps } from "../http/context";
import { createRouter } from "../http/router";

export function settingsRoutes(_deps: AppDeps) {
  const app = createRouter();
  return app;
}
