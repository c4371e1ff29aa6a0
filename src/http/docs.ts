// /openapi.json (generated from the same zod schemas that validate) and /docs, a browsable
// reference whose assets kincare serves itself, so it works offline.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { getAbsoluteFSPath } from "swagger-ui-dist";
import type { AppDeps, AppEnv } from "./context";

const assets: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>kincare API reference</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>`;

const init = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });`;

export function docsRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "The session token from POST /v1/auth/login or /v1/auth/signup",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "cookie", {
    type: "apiKey",
    in: "cookie",
    name: "kincare_session",
    description: "The same session as an HttpOnly cookie; writes must come with a matching Origin",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "kincare API",
      version: "1",
      description:
        "Home-based elderly care coordination. Every error body is { error: { code, message, details?, requestId } }.",
    },
    servers: [{ url: deps.config.PUBLIC_URL }],
    security: [{ bearer: [] }, { cookie: [] }],
  });

  const dist = getAbsoluteFSPath();
  app.get("/docs", (c) => c.html(page));
  app.get("/docs/init.js", (c) =>
    c.body(init, 200, { "content-type": "text/javascript; charset=utf-8" }),
  );
  app.get("/docs/assets/:file", async (c) => {
    const file = c.req.param("file");
    const type = assets[file];
    if (!type) return c.notFound();
    const body = await readFile(join(dist, file));
    return c.body(body, 200, { "content-type": type, "cache-control": "public, max-age=86400" });
  });
}
