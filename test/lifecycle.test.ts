// The real process: `node --import tsx src/main.ts` on a fresh database, probed over HTTP,
// stopped with SIGTERM, and started again on the same data; a bad configuration stops the start.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { PASSWORD } from "./helpers/factories";
import { eventually, freePort, killLeftovers, type Spawned, spawnTs } from "./helpers/processes";
import { createTestDatabase, type TestDatabase } from "./helpers/test-db";

const databases: TestDatabase[] = [];

async function startKincare(testDb: TestDatabase, env: Record<string, string> = {}) {
  const port = await freePort();
  const proc = spawnTs("src/main.ts", {
    ...testDb.env,
    PORT: String(port),
    HOST: "127.0.0.1",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: "0",
    // On an external broker (MQTT_URL in CI), sessions and topics of their own.
    MQTT_CLIENT_ID: `kclife-${process.pid}-${port}`,
    MQTT_TOPIC_PREFIX: `kclife${process.pid}x${port}/v1`,
    LOG_LEVEL: "info",
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    BOOTSTRAP_OPERATOR_EMAIL: "",
    BOOTSTRAP_OPERATOR_PASSWORD: "",
    ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`kincare exited:\n${proc.output()}`);
      try {
        return (await fetch(`${url}/healthz`)).status === 200;
      } catch {
        return false;
      }
    },
    { timeoutMs: 30_000, what: "kincare to answer /healthz" },
  );
  return { proc, url };
}

async function stop(proc: Spawned) {
  proc.child.kill("SIGTERM");
  return proc.exited;
}

async function json(res: Response) {
  return (await res.json()) as any;
}

describe("the kincare process", () => {
  afterEach(async () => {
    await killLeftovers();
    for (const db of databases.splice(0)) await db.drop();
  });

  test("serves, stops cleanly on SIGTERM, and keeps all data across a restart", async () => {
    const testDb = await createTestDatabase();
    databases.push(testDb);
    const first = await startKincare(testDb);

    const ready = await fetch(`${first.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await json(ready)).toEqual({
      status: "ready",
      database: testDb.schema ? "postgres" : "sqlite",
    });
    const health = await fetch(`${first.url}/healthz`);
    expect(health.headers.get("x-request-id")).toBeTruthy();

    const signUp = await fetch(`${first.url}/v1/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        displayName: "Wen Li",
        email: "wen.li@example.com",
        phone: "+86 139 1234 5678",
        password: PASSWORD,
      }),
    });
    expect(signUp.status).toBe(201);
    const { user, session } = await json(signUp);
    const patched = await fetch(`${first.url}/v1/me`, {
      method: "PATCH",
      headers: { "content-type": "application/json", authorization: `Bearer ${session.token}` },
      body: JSON.stringify({
        timeZone: "Asia/Shanghai",
        quietHours: { start: "22:00", end: "07:00" },
      }),
    });
    expect(patched.status).toBe(200);

    const exit = await stop(first.proc);
    expect(exit).toEqual({ code: 0, signal: null });
    const lines = first.proc
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { msg: string; requestId?: string; path?: string });
    expect(lines.some((l) => l.msg === "kincare is listening")).toBe(true);
    expect(
      lines.some((l) => l.msg === "request" && l.path === "/v1/auth/signup" && l.requestId),
    ).toBe(true);
    expect(lines.at(-1)?.msg).toBe("stopped");
    // The logs are JSON lines without the password or the session token.
    expect(first.proc.output()).not.toContain(PASSWORD);
    expect(first.proc.output()).not.toContain(session.token);
    await expect(fetch(`${first.url}/healthz`)).rejects.toThrow();

    // Same database, new process: nothing was lost, not even the session.
    const second = await startKincare(testDb);
    expect(second.proc.output()).not.toContain("migration applied");
    const stillSignedIn = await fetch(`${second.url}/v1/me`, {
      headers: { authorization: `Bearer ${session.token}` },
    });
    expect(stillSignedIn.status).toBe(200);
    expect(await json(stillSignedIn)).toMatchObject({
      id: user.id,
      timeZone: "Asia/Shanghai",
      quietHours: { start: "22:00", end: "07:00" },
    });

    const login = await fetch(`${second.url}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ login: "+8613912345678", password: PASSWORD }),
    });
    expect(login.status).toBe(200);
    const again = await json(login);
    expect(again.user).toMatchObject({
      id: user.id,
      displayName: "Wen Li",
      email: "wen.li@example.com",
      roles: ["family"],
    });
    const sessions = await fetch(`${second.url}/v1/auth/sessions`, {
      headers: { authorization: `Bearer ${again.session.token}` },
    });
    expect((await json(sessions)).items).toHaveLength(2);

    expect((await stop(second.proc)).code).toBe(0);
  });

  test("a request in flight when SIGTERM arrives is finished before the process exits", async () => {
    const testDb = await createTestDatabase();
    databases.push(testDb);
    const { proc, url } = await startKincare(testDb);
    // The body is sent in two halves: SIGTERM arrives after the server has the request's headers
    // and half its body, so the request is certainly in flight.
    const body = JSON.stringify({
      displayName: "Late",
      email: "late@example.com",
      password: PASSWORD,
    });
    let firstHalfSent!: () => void;
    const sent = new Promise<void>((r) => {
      firstHalfSent = r;
    });
    let sendRest!: () => void;
    const rest = new Promise<void>((r) => {
      sendRest = r;
    });
    const encoder = new TextEncoder();
    const inFlight = fetch(`${url}/v1/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      duplex: "half",
      body: new ReadableStream({
        async start(controller) {
          controller.enqueue(encoder.encode(body.slice(0, 20)));
          firstHalfSent();
          await rest;
          controller.enqueue(encoder.encode(body.slice(20)));
          controller.close();
        },
      }),
    } as RequestInit);
    await sent;
    await new Promise((r) => setTimeout(r, 300));
    proc.child.kill("SIGTERM");
    await proc.waitFor(/shutting down/);
    // New connections are refused while the old request is still being served.
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    sendRest();
    const res = await inFlight;
    expect(res.status).toBe(201);
    expect((await json(res)).user.displayName).toBe("Late");
    expect(await proc.exited).toEqual({ code: 0, signal: null });
  });

  test("the bootstrap operator is created from the environment, once", async () => {
    const testDb = await createTestDatabase();
    databases.push(testDb);
    const env = {
      BOOTSTRAP_OPERATOR_EMAIL: "desk@kincare.example",
      BOOTSTRAP_OPERATOR_PASSWORD: "a long desk password",
    };
    const first = await startKincare(testDb, env);
    expect(first.proc.output()).toContain("bootstrap operator account created");
    const login = await fetch(`${first.url}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        login: env.BOOTSTRAP_OPERATOR_EMAIL,
        password: env.BOOTSTRAP_OPERATOR_PASSWORD,
      }),
    });
    expect((await json(login)).user.roles).toEqual(["operator"]);
    expect(first.proc.output()).not.toContain(env.BOOTSTRAP_OPERATOR_PASSWORD);
    await stop(first.proc);

    const second = await startKincare(testDb, env);
    expect(second.proc.output()).not.toContain("bootstrap operator account created");
    await stop(second.proc);
  });
});

// Concurrent: each case is a process start (~3 s of module loading) that does little else.
describe.concurrent("a bad configuration stops the start", () => {
  test.each([
    ["PORT", "abc"],
    ["DATABASE_URL", "mysql://x"],
    ["PUBLIC_URL", "not a url"],
    ["BOOTSTRAP_OPERATOR_PASSWORD", "short"],
  ])("%s=%s exits non-zero with a message naming the variable", async (name, value) => {
    // The configuration is refused before any database is opened, so this one is never created.
    const dir = mkdtempSync(join(tmpdir(), "kincare-config-"));
    const proc = spawnTs("src/main.ts", {
      DATABASE_URL: join(dir, "never.db"),
      PORT: "0",
      BOOTSTRAP_OPERATOR_EMAIL:
        name === "BOOTSTRAP_OPERATOR_PASSWORD" ? "desk@kincare.example" : "",
      BOOTSTRAP_OPERATOR_PASSWORD: "",
      [name]: value,
    });
    try {
      const { code } = await proc.exited;
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      expect(proc.output()).toContain(`${name}:`);
      expect(proc.output()).toMatch(/configuration is wrong/);
      // Refused before anything was touched: no stack trace, no listening, no database file.
      expect(proc.output()).not.toMatch(/\n\s+at /);
      expect(proc.output()).not.toContain("listening");
      expect(existsSync(join(dir, "never.db"))).toBe(false);
    } finally {
      proc.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the embedded broker's port", () => {
  test("a taken MQTT_PORT stops the start with a message naming MQTT_PORT", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", () => resolve()));
    const port = (taken.address() as AddressInfo).port;
    const testDb = await createTestDatabase();
    databases.push(testDb);
    const proc = spawnTs("src/main.ts", {
      ...testDb.env,
      PORT: "0",
      HOST: "127.0.0.1",
      MQTT_URL: "",
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(port),
      BOOTSTRAP_OPERATOR_EMAIL: "",
      BOOTSTRAP_OPERATOR_PASSWORD: "",
    });
    try {
      const { code } = await proc.exited;
      expect(code).toBe(1);
      expect(proc.output()).toContain(`MQTT_PORT ${port} is already in use`);
    } finally {
      proc.child.kill("SIGKILL");
      taken.close();
    }
  });
});
