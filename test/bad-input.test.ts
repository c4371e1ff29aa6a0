// Every kind of bad input gets a clear 4xx in the one error shape; an unexpected failure is a
// 500 that shows nothing of the inside; the API describes itself and its reference works offline.
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createOperator, PASSWORD, type SignedIn, signUpFamily, unique } from "./helpers/factories";
import { type ApiResponse, createTestApp, type TestApp } from "./helpers/test-app";

interface FieldIssue {
  path: string;
  message: string;
}

function expectErrorShape(res: ApiResponse, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  expect(res.body).toEqual({
    error: {
      code,
      message: expect.any(String),
      ...(res.body?.error?.details !== undefined ? { details: res.body.error.details } : {}),
      requestId: res.headers.get("x-request-id"),
    },
  });
  expect(res.body.error.message.length).toBeGreaterThan(5);
}

function issuePaths(res: ApiResponse): string[] {
  return (res.body.error.details.issues as FieldIssue[]).map((i) => i.path).sort();
}

describe("bad input", () => {
  let t: TestApp;
  let user: SignedIn;
  beforeAll(async () => {
    t = await createTestApp({ env: { MAX_BODY_BYTES: "2048" } });
    user = await signUpFamily(t);
  });
  afterAll(() => t.close());

  test.each([
    ["a truncated object", '{"login": "a@example.com", "password": '],
    ["a trailing comma", '{"login": "a@example.com",}'],
    ["not JSON at all", "login=a@example.com&password=x"],
  ])("malformed JSON (%s) is 400 malformed_json", async (_name, raw) => {
    const res = await t.request("POST", "/v1/auth/login", { raw });
    expectErrorShape(res, 400, "malformed_json");
  });

  test.each([
    ["text/plain", '{"login":"a@example.com","password":"x"}'],
    ["application/x-www-form-urlencoded", "login=a%40example.com&password=x"],
    ["multipart/form-data; boundary=xyz", "--xyz--"],
  ])("a body sent as %s is 415 unsupported_media_type", async (type, raw) => {
    const res = await t.request("POST", "/v1/auth/login", {
      raw,
      headers: { "content-type": type },
    });
    expectErrorShape(res, 415, "unsupported_media_type");
  });

  test("a POST without the body it needs is 400 naming the missing fields", async () => {
    const res = await t.request("POST", "/v1/auth/login");
    expectErrorShape(res, 400, "validation_failed");
    expect(issuePaths(res)).toEqual(["login", "password"]);
    const empty = await t.request("POST", "/v1/auth/login", { raw: "" });
    expectErrorShape(empty, 400, "malformed_json");
  });

  test("wrong types are 400 validation_failed naming each bad field", async () => {
    const res = await t.request("POST", "/v1/auth/signup", {
      body: { displayName: 42, email: "x@example.com", password: true, timeZone: ["UTC"] },
    });
    expectErrorShape(res, 400, "validation_failed");
    expect(issuePaths(res)).toEqual(["displayName", "password", "timeZone"]);
    for (const issue of res.body.error.details.issues as FieldIssue[]) {
      expect(issue.message.length).toBeGreaterThan(3);
    }
    expect(res.body.error.message).toContain("displayName");
  });

  test("unknown enum values are 400 naming the field, nested paths included", async () => {
    const res = await t.request("PATCH", "/v1/me", {
      token: user.token,
      body: { language: "klingon", channels: ["push", "carrier-pigeon"] },
    });
    expectErrorShape(res, 400, "validation_failed");
    expect(issuePaths(res)).toEqual(["channels.1", "language"]);
  });

  test("an unknown enum value in a query string names the query field", async () => {
    const operator = await createOperator(t);
    const res = await t.request("GET", "/v1/users?role=wizard", { token: operator.token });
    expectErrorShape(res, 400, "validation_failed");
    expect(issuePaths(res)).toEqual(["query.role"]);
  });

  test("unknown fields are refused, each named in the issues", async () => {
    const email = `${unique("mei")}@example.com`;
    const res = await t.request("POST", "/v1/auth/signup", {
      body: {
        displayName: "Mei",
        email,
        password: PASSWORD,
        isOperator: true,
        roles: ["operator"],
      },
    });
    expectErrorShape(res, 400, "validation_failed");
    expect(issuePaths(res)).toEqual(["isOperator", "roles"]);
    expect(res.body.error.details.issues[0].message).toBe("unknown field");
    // Nothing was created: the same email can still sign up.
    const ok = await t.request("POST", "/v1/auth/signup", {
      body: { displayName: "Mei", email, password: PASSWORD },
    });
    expect(ok.status).toBe(201);
    expect(ok.body.user.roles).toEqual(["family"]);
  });

  test("unknown nested fields name their full path", async () => {
    const res = await t.request("PATCH", "/v1/me", {
      token: user.token,
      body: { quietHours: { start: "22:00", end: "07:00", timezone: "UTC" } },
    });
    expectErrorShape(res, 400, "validation_failed");
    expect(issuePaths(res)).toEqual(["quietHours.timezone"]);
  });

  test("an invalid time zone is 400 naming timeZone, and nothing changes", async () => {
    const res = await t.request("PATCH", "/v1/me", {
      token: user.token,
      body: { timeZone: "Mars/Olympus" },
    });
    expectErrorShape(res, 400, "validation_failed");
    expect(issuePaths(res)).toEqual(["timeZone"]);
    expect(res.body.error.details.issues[0].message).toMatch(/time zone/i);
    const me = await t.request("GET", "/v1/me", { token: user.token });
    expect(me.body.timeZone).toBe("UTC");

    const valid = await t.request("PATCH", "/v1/me", {
      token: user.token,
      body: { timeZone: "America/Argentina/Buenos_Aires" },
    });
    expect(valid.status).toBe(200);
    expect(valid.body.timeZone).toBe("America/Argentina/Buenos_Aires");
  });

  test.each(["12345", "+1 555", "call me maybe", "+44 20 7946"])(
    "an invalid phone number (%s) is 400 naming phone",
    async (phone) => {
      const res = await t.request("POST", "/v1/auth/signup", {
        body: {
          displayName: "Li",
          email: `${unique("li")}@example.com`,
          phone,
          password: PASSWORD,
        },
      });
      expectErrorShape(res, 400, "validation_failed");
      expect(issuePaths(res)).toEqual(["phone"]);
      expect(res.body.error.details.issues[0].message).toMatch(/phone/i);
    },
  );

  test("a local time that is not HH:MM names the nested field", async () => {
    const res = await t.request("PATCH", "/v1/me", {
      token: user.token,
      body: { quietHours: { start: "25:00", end: "7am" } },
    });
    expectErrorShape(res, 400, "validation_failed");
    expect(issuePaths(res)).toEqual(["quietHours.end", "quietHours.start"]);
  });

  test("a body over MAX_BODY_BYTES is 413 payload_too_large", async () => {
    const res = await t.request("POST", "/v1/auth/signup", {
      body: {
        displayName: "Big",
        email: `${unique("big")}@example.com`,
        password: "x".repeat(3000),
      },
    });
    expectErrorShape(res, 413, "payload_too_large");
    expect(res.body.error.message).toContain("2048");

    // Just under the limit is judged on its content instead.
    const under = await t.request("POST", "/v1/auth/signup", {
      body: {
        displayName: "Big",
        email: `${unique("big")}@example.com`,
        password: "x".repeat(1800),
      },
    });
    expect(under.status).toBe(400);
    expect(issuePaths(under)).toEqual(["password"]);
  });

  test("a body over the limit is refused over real HTTP too, even when chunked", async () => {
    const url = await t.listen();
    const big = JSON.stringify({ login: "a@example.com", password: "y".repeat(5000) });
    const declared = await fetch(`${url}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: big,
    });
    expect(declared.status).toBe(413);
    const declaredBody = (await declared.json()) as { error: { code: string } };
    expect(declaredBody.error.code).toBe("payload_too_large");

    const chunked = await fetch(`${url}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  test("an unknown route is 404 not_found in the error shape", async () => {
    for (const [method, path] of [
      ["GET", "/v1/nothing-here"],
      ["POST", "/v1/auth/unknown"],
      ["GET", "/favicon.php"],
    ] as const) {
      const res = await t.request(method, path, { token: user.token });
      expectErrorShape(res, 404, "not_found");
      expect(res.body.error.message).toContain(path);
    }
  });

  test("/openapi.json is an OpenAPI 3 document with the login path and components", async () => {
    const res = await t.request("GET", "/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const loginOp = doc.paths["/v1/auth/login"]?.post;
    expect(loginOp).toBeDefined();
    expect(loginOp.requestBody.content["application/json"].schema).toBeDefined();
    expect(Object.keys(loginOp.responses)).toEqual(expect.arrayContaining(["200", "400", "401"]));
    expect(doc.paths["/v1/users/{userId}/roles"]?.put).toBeDefined();
    // Components come from the same zod schemas that validate requests.
    expect(doc.components.schemas.Login.properties).toHaveProperty("login");
    expect(doc.components.schemas.Login.required).toEqual(
      expect.arrayContaining(["login", "password"]),
    );
    expect(doc.components.schemas.Role.enum).toEqual(
      expect.arrayContaining(["operator", "family", "worker"]),
    );
    expect(doc.components.schemas.Error.properties.error).toBeDefined();
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
  });

  test("/docs is an HTML page whose Swagger UI assets kincare serves itself", async () => {
    const page = await t.request("GET", "/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = String(page.body);
    // Offline: every script and stylesheet is local.
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs).toContain("/docs/assets/swagger-ui-bundle.js");
    for (const ref of refs) expect(ref).toMatch(/^\//);

    for (const ref of refs) {
      const asset = await t.request("GET", ref);
      expect(asset.status, ref).toBe(200);
    }
    const bundle = await t.app.request("/docs/assets/swagger-ui-bundle.js");
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toMatch(/javascript/);
    const text = await bundle.text();
    expect(text.length).toBeGreaterThan(100_000);
    expect(text).toContain("SwaggerUIBundle");

    const missing = await t.request("GET", "/docs/assets/..%2Fpackage.json");
    expect(missing.status).toBe(404);
    const other = await t.request("GET", "/docs/assets/index.html");
    expect(other.status).toBe(404);
  });
});

describe("unexpected failures", () => {
  test("an unexpected exception is 500 internal with no internals in the body, logged with its request id", async () => {
    const t = await createTestApp();
    try {
      const user = await signUpFamily(t);
      // A stored value the code cannot read is nothing it expects. (Not a dropped table: on
      // PostgreSQL, Kysely's migrator in another worker reads every schema's tables and fails on
      // a table dropped under it.)
      await sql`UPDATE users SET channels = 'not json' WHERE id = ${user.id}`.execute(t.db);
      const res = await t.request("GET", "/v1/me", { token: user.token });
      expectErrorShape(res, 500, "internal");
      const text = JSON.stringify(res.body);
      for (const leak of [
        "not json",
        "SyntaxError",
        "SQLITE",
        "select",
        "stack",
        ".ts:",
        "    at ",
      ]) {
        expect(text.toLowerCase()).not.toContain(leak.toLowerCase());
      }
      expect(res.body.error.details).toBeUndefined();

      const logged = t.logs.find(
        (l) => l.requestId === res.body.error.requestId && l.level === 50,
      ) as { err?: { message?: string } } | undefined;
      expect(logged?.err?.message).toMatch(/JSON/);
    } finally {
      await t.close();
    }
  });
});
