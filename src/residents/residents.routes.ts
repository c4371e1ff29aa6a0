import type { AppDeps } from "../http/context";
import { createRouter } from "../http/router";

export function residentsRoutes(_deps: AppDeps) {
  const app = createRouter();
  return app;
}
