// Accounts and sessions through the real app: sign-up, login, logout, bearer and cookie sessions,
// expiry, throttling and lockout with the counters in the database, roles, password resets.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  createOperator,
  createUserWithRoles,
  login,
  PASSWORD,
  type SignedIn,
  signUpFamily,
  unique,
} from "./helpers/factories";
import { createTestApp, type TestApp } from "./helpers/test-app";

const HOUR = 3_600_000;
const ORIGIN = "http://kincare.test";

function sessionCookie(setCookie: string | null): string {
  const match = /kincare_session=([^;]+)/.exec(setCookie ?? "");
  if (!match) throw new Error(`no session cookie in ${setCookie}`);
  return `kincare_session=${match[1]}`;
}

describe("accounts on a shared app", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  test("a family member signs up with email and phone; the phone is stored in E.164", async () => {
    const email = `${unique("Mei.")}@Example.com`;
    const res = await t.request("POST", "/v1/auth/signup", {
      body: { displayName: "Mei Chen", email, phone: "+44 20 7946 0018", password: PASSWORD },
    });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({
      displayName: "Mei Chen",
      email: email.toLowerCase(),
      phone: "+442079460018",
      roles: ["family"],
    });
    expect(res.body.session.token).toEqual(expect.any(String));

    const me = await t.request("GET", "/v1/me", { token: res.body.session.token });
    expect(me.status).toBe(200);
    expect(me.body.phone).toBe("+442079460018");
  });

  test("a second sign-up with the same email (in any case) is 409 already_exists", async () => {
    const first = await signUpFamily(t);
    const res = await t.request("POST", "/v1/auth/signup", {
      body: { displayName: "Someone Else", email: first.email.toUpperCase(), password: PASSWORD },
    });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: "already_exists", details: { field: "email" } });
  });

  test("a second sign-up with the same phone number written differently is 409", async () => {
    await signUpFamily(t, { phone: "+86 138 0013 8001" });
    const res = await t.request("POST", "/v1/auth/signup", {
      body: {
        displayName: "Other",
        email: `${unique("other")}@example.com`,
        phone: "+8613800138001",
        password: PASSWORD,
      },
    });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: "already_exists", details: { field: "phone" } });
  });

  test("login works by email and by phone, and a wrong password is 401 invalid_credentials", async () => {
    const user = await signUpFamily(t, { phone: "+86 138 0013 8002" });
    const byEmail = await t.request("POST", "/v1/auth/login", {
      body: { login: user.email, password: PASSWORD },
    });
    expect(byEmail.status).toBe(200);
    expect(byEmail.body.user.id).toBe(user.id);

    const byPhone = await t.request("POST", "/v1/auth/login", {
      body: { login: "+86 138-0013-8002", password: PASSWORD },
    });
    expect(byPhone.status).toBe(200);
    expect(byPhone.body.user.id).toBe(user.id);
    expect(byPhone.body.session.token).not.toBe(byEmail.body.session.token);

    const wrong = await t.request("POST", "/v1/auth/login", {
      body: { login: user.email, password: "not the password at all" },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("invalid_credentials");

    const nobody = await t.request("POST", "/v1/auth/login", {
      body: { login: `${unique("nobody")}@example.com`, password: PASSWORD },
    });
    expect(nobody.status).toBe(401);
    expect(nobody.body.error.code).toBe("invalid_credentials");
  });

  test("logout ends the session: the same token is then 401", async () => {
    const user = await signUpFamily(t);
    expect((await t.request("GET", "/v1/me", { token: user.token })).status).toBe(200);
    const out = await t.request("POST", "/v1/auth/logout", { token: user.token });
    expect(out.status).toBe(204);
    const after = await t.request("GET", "/v1/me", { token: user.token });
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe("unauthenticated");
  });

  test("without a session /v1/me is 401 and a malformed Authorization header is 401", async () => {
    expect((await t.request("GET", "/v1/me")).status).toBe(401);
    const res = await t.request("GET", "/v1/me", { headers: { authorization: "Basic abc" } });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("unauthenticated");
  });

  test("login sets an HttpOnly, SameSite=Lax session cookie that authenticates reads", async () => {
    const user = await signUpFamily(t);
    const res = await t.request("POST", "/v1/auth/login", {
      body: { login: user.email, password: PASSWORD },
    });
    const setCookie = res.headers.get("set-cookie");
    expect(setCookie).toMatch(/kincare_session=/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);
    expect(setCookie).toMatch(/Path=\//);
    // PUBLIC_URL is http:// in tests: a Secure cookie would never come back over it.
    expect(setCookie).not.toMatch(/Secure/i);

    const me = await t.request("GET", "/v1/me", { headers: { cookie: sessionCookie(setCookie) } });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(user.id);
  });

  test("a cookie-authenticated write needs a matching Origin: none or foreign is 403, own works", async () => {
    const user = await signUpFamily(t);
    const res = await t.request("POST", "/v1/auth/login", {
      body: { login: user.email, password: PASSWORD },
    });
    const cookie = sessionCookie(res.headers.get("set-cookie"));

    const noOrigin = await t.request("PATCH", "/v1/me", {
      headers: { cookie },
      body: { displayName: "Changed Without Origin" },
    });
    expect(noOrigin.status).toBe(403);
    expect(noOrigin.body.error.code).toBe("origin_rejected");

    const foreign = await t.request("PATCH", "/v1/me", {
      headers: { cookie, origin: "https://evil.example" },
      body: { displayName: "Changed From Elsewhere" },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe("origin_rejected");

    const unchanged = await t.request("GET", "/v1/me", { token: user.token });
    expect(unchanged.body.displayName).toBe("Family Member");

    const own = await t.request("PATCH", "/v1/me", {
      headers: { cookie, origin: ORIGIN },
      body: { displayName: "Changed At Home" },
    });
    expect(own.status).toBe(200);
    expect(own.body.displayName).toBe("Changed At Home");
  });

  test("a bearer-token write needs no Origin (it cannot be forged cross-site)", async () => {
    const user = await signUpFamily(t);
    const res = await t.request("PATCH", "/v1/me", {
      token: user.token,
      body: { displayName: "From The App" },
    });
    expect(res.status).toBe(200);
    expect(res.body.displayName).toBe("From The App");
  });

  test("I can list my sessions and revoke one; the revoked token is then 401", async () => {
    const user = await signUpFamily(t);
    const phone = await login(t, user.email);
    const list = await t.request("GET", "/v1/auth/sessions", { token: user.token });
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(2);
    const current = list.body.items.filter((s: { current: boolean }) => s.current);
    expect(current).toHaveLength(1);
    const other = list.body.items.find((s: { current: boolean }) => !s.current);

    const revoked = await t.request("DELETE", `/v1/auth/sessions/${other.id}`, {
      token: user.token,
    });
    expect(revoked.status).toBe(204);
    expect((await t.request("GET", "/v1/me", { token: phone.token })).status).toBe(401);
    expect((await t.request("GET", "/v1/me", { token: user.token })).status).toBe(200);

    const after = await t.request("GET", "/v1/auth/sessions", { token: user.token });
    expect(after.body.items.map((s: { id: string }) => s.id)).not.toContain(other.id);
  });

  test("I cannot revoke someone else's session (404, and it stays live)", async () => {
    const me = await signUpFamily(t);
    const stranger = await signUpFamily(t);
    const theirs = await t.request("GET", "/v1/auth/sessions", { token: stranger.token });
    const res = await t.request("DELETE", `/v1/auth/sessions/${theirs.body.items[0].id}`, {
      token: me.token,
    });
    expect(res.status).toBe(404);
    expect((await t.request("GET", "/v1/me", { token: stranger.token })).status).toBe(200);
  });

  test("a user with two roles: an operator sets family+worker and /v1/me shows both", async () => {
    const operator = await createOperator(t);
    const daughter = await createUserWithRoles(t, operator.token, ["family"]);
    const res = await t.request("PUT", `/v1/users/${daughter.id}/roles`, {
      token: operator.token,
      body: { roles: ["family", "worker"] },
    });
    expect(res.status).toBe(200);
    expect(res.body.roles).toEqual(["family", "worker"]);

    const me = await t.request("GET", "/v1/me", { token: daughter.token });
    expect(me.body.roles).toEqual(["family", "worker"]);

    // Two roles, neither of them operator: still no access to account administration.
    expect((await t.request("GET", "/v1/users", { token: daughter.token })).status).toBe(403);
  });

  test("roles can only be set by an operator", async () => {
    const family = await signUpFamily(t);
    const res = await t.request("PUT", `/v1/users/${family.id}/roles`, {
      token: family.token,
      body: { roles: ["family", "operator"] },
    });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("forbidden");
    const me = await t.request("GET", "/v1/me", { token: family.token });
    expect(me.body.roles).toEqual(["family"]);
  });

  test.each([
    ["GET", "/v1/users"],
    ["POST", "/v1/users"],
    ["POST", "/v1/users/some-id/password-reset"],
    ["GET", "/v1/users/some-id/sessions"],
  ])("a family member is denied %s %s with 403", async (method, path) => {
    const family = await signUpFamily(t);
    const res = await t.request(method, path, {
      token: family.token,
      ...(method === "POST" && path === "/v1/users"
        ? {
            body: {
              displayName: "X",
              email: `${unique("x")}@example.com`,
              password: PASSWORD,
              roles: ["operator"],
            },
          }
        : {}),
    });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("forbidden");
  });

  test("an operator lists accounts; without a session /v1/users is 401", async () => {
    const operator = await createOperator(t);
    const res = await t.request("GET", "/v1/users", { token: operator.token });
    expect(res.status).toBe(200);
    expect(res.body.items.map((u: { id: string }) => u.id)).toContain(operator.id);
    expect((await t.request("GET", "/v1/users")).status).toBe(401);
  });

  test("operator password reset: new password works, old sessions end, the token is single-use", async () => {
    const operator = await createOperator(t);
    const user = await signUpFamily(t);
    const issued = await t.request("POST", `/v1/users/${user.id}/password-reset`, {
      token: operator.token,
    });
    expect(issued.status).toBe(201);
    expect(issued.body.url).toContain("/reset-password?token=");

    const newPassword = "a brand new password";
    const reset = await t.request("POST", "/v1/auth/password-reset", {
      body: { token: issued.body.token, newPassword },
    });
    expect(reset.status).toBe(204);

    expect((await t.request("GET", "/v1/me", { token: user.token })).status).toBe(401);
    const old = await t.request("POST", "/v1/auth/login", {
      body: { login: user.email, password: PASSWORD },
    });
    expect(old.status).toBe(401);
    await login(t, user.email, newPassword);

    const again = await t.request("POST", "/v1/auth/password-reset", {
      body: { token: issued.body.token, newPassword: "yet another password" },
    });
    expect(again.status).toBe(410);
    expect(again.body.error.code).toBe("reset_token_invalid");
    await login(t, user.email, newPassword);
  });

  test("a newer reset link replaces the older one", async () => {
    const operator = await createOperator(t);
    const user = await signUpFamily(t);
    const first = await t.request("POST", `/v1/users/${user.id}/password-reset`, {
      token: operator.token,
    });
    const second = await t.request("POST", `/v1/users/${user.id}/password-reset`, {
      token: operator.token,
    });
    const stale = await t.request("POST", "/v1/auth/password-reset", {
      body: { token: first.body.token, newPassword: "from the old link" },
    });
    expect(stale.status).toBe(410);
    const fresh = await t.request("POST", "/v1/auth/password-reset", {
      body: { token: second.body.token, newPassword: "from the new link" },
    });
    expect(fresh.status).toBe(204);
  });

  test("changing my own password ends my other sessions but keeps this one", async () => {
    const user = await signUpFamily(t);
    const laptop = await login(t, user.email);
    const wrong = await t.request("POST", "/v1/me/password", {
      token: user.token,
      body: { currentPassword: "not my password", newPassword: "my new password 2026" },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("invalid_credentials");
    expect((await t.request("GET", "/v1/me", { token: laptop.token })).status).toBe(200);

    const res = await t.request("POST", "/v1/me/password", {
      token: user.token,
      body: { currentPassword: PASSWORD, newPassword: "my new password 2026" },
    });
    expect(res.status).toBe(204);
    expect((await t.request("GET", "/v1/me", { token: laptop.token })).status).toBe(401);
    expect((await t.request("GET", "/v1/me", { token: user.token })).status).toBe(200);
    await login(t, user.email, "my new password 2026");
  });

  test("every response carries an x-request-id, and a tidy incoming one is echoed", async () => {
    const responses = [
      await t.request("GET", "/healthz"),
      await t.request("GET", "/v1/me"),
      await t.request("GET", "/v1/no-such-thing"),
      await t.request("POST", "/v1/auth/login", { body: { login: 1 } }),
    ];
    const ids = responses.map((r) => r.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(/^[\w-]{8,}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Error bodies carry the same id as the header.
    expect(responses[1]!.body.error.requestId).toBe(ids[1]);

    const echoed = await t.request("GET", "/v1/me", {
      headers: { "x-request-id": "trace-4711_abc" },
    });
    expect(echoed.headers.get("x-request-id")).toBe("trace-4711_abc");
    expect(echoed.body.error.requestId).toBe("trace-4711_abc");
    expect(t.logs.some((l) => l.requestId === "trace-4711_abc" && l.status === 401)).toBe(true);

    for (const untidy of ["has spaces in it", "x".repeat(200), "a=b"]) {
      const res = await t.request("GET", "/healthz", { headers: { "x-request-id": untidy } });
      const id = res.headers.get("x-request-id");
      expect(id).not.toBe(untidy);
      expect(id).toMatch(/^[\w-]{8,128}$/);
    }
  });
});

describe("session expiry", () => {
  let t: TestApp;
  afterEach(() => t.close());

  test("a session ends after auth.session_ttl_hours", async () => {
    t = await createTestApp();
    const user = await signUpFamily(t);
    const signup = await t.request("GET", "/v1/auth/sessions", { token: user.token });
    const ttlMs = Date.parse(signup.body.items[0].expiresAt) - t.clock.now().getTime();
    expect(ttlMs).toBe(30 * 24 * HOUR);

    t.clock.advance(ttlMs - 60_000);
    expect((await t.request("GET", "/v1/me", { token: user.token })).status).toBe(200);
    t.clock.advance(61_000);
    const expired = await t.request("GET", "/v1/me", { token: user.token });
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe("unauthenticated");
    // Signing in again gives a fresh session.
    const again = await login(t, user.email);
    expect((await t.request("GET", "/v1/me", { token: again.token })).status).toBe(200);
  });

  test("an operator's shorter session_ttl_hours applies to new sessions", async () => {
    t = await createTestApp();
    await t.db
      .insertInto("settings")
      .values({
        key: "auth.session_ttl_hours",
        value: "2",
        updated_at: t.clock.now().toISOString(),
        updated_by: null,
      })
      .execute();
    const user = await signUpFamily(t);
    t.clock.advance(2 * HOUR - 1000);
    expect((await t.request("GET", "/v1/me", { token: user.token })).status).toBe(200);
    t.clock.advance(2000);
    expect((await t.request("GET", "/v1/me", { token: user.token })).status).toBe(401);
  });
});

describe("login throttling and lockout", () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    // The second instance shares the first one's database: close it first, then the owner.
    for (const app of apps.reverse()) await app.close();
    apps.length = 0;
  });

  async function attempt(t: TestApp, loginName: string, password: string) {
    return t.request("POST", "/v1/auth/login", { body: { login: loginName, password } });
  }

  /** Fails logins until locked, waiting out each slow-down; returns the codes seen. */
  async function failUntilLocked(t: TestApp, user: SignedIn): Promise<string[]> {
    const codes: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await attempt(t, user.email, "wrong password!");
      codes.push(res.body.error.code);
      if (res.body.error.code === "account_locked") return codes;
      if (res.body.error.code === "too_many_attempts") {
        const wait = Number(res.headers.get("retry-after"));
        expect(wait).toBeGreaterThan(0);
        t.clock.advance(wait * 1000);
      }
    }
    throw new Error(`never locked: ${codes.join(", ")}`);
  }

  test("repeated failures slow down, then lock; the lock is shared through the database and ends", async () => {
    const t = await createTestApp();
    apps.push(t);
    const user = await signUpFamily(t);

    // Three failures are answered plainly; the next try comes too soon.
    for (let i = 0; i < 3; i++) {
      const res = await attempt(t, user.email, "wrong password!");
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("invalid_credentials");
    }
    const tooSoon = await attempt(t, user.email, PASSWORD);
    expect(tooSoon.status).toBe(429);
    expect(tooSoon.body.error.code).toBe("too_many_attempts");
    expect(Number(tooSoon.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(tooSoon.body.error.details.retryAfterSeconds).toBe(
      Number(tooSoon.headers.get("retry-after")),
    );
    // Even the right password waits: a slowed-down account does not check it.
    t.clock.advance(Number(tooSoon.headers.get("retry-after")) * 1000);

    const codes = await failUntilLocked(t, user);
    expect(codes.at(-1)).toBe("account_locked");

    const locked = await attempt(t, user.email, PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe("account_locked");
    const retryAfter = Number(locked.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(14 * 60);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);

    // A second kincare process on the same database sees the same lock.
    const second = await createTestApp({ testDb: t.testDb, clock: t.clock });
    apps.push(second);
    const elsewhere = await attempt(second, user.email, PASSWORD);
    expect(elsewhere.status).toBe(429);
    expect(elsewhere.body.error.code).toBe("account_locked");

    // auth.lockout_minutes later the right password works again, on either instance.
    t.clock.advance(15 * 60_000 + 1000);
    const unlocked = await attempt(second, user.email, PASSWORD);
    expect(unlocked.status).toBe(200);
    // A success clears the counters: the next single failure is not slowed down.
    const oneSlip = await attempt(t, user.email, "wrong password!");
    expect(oneSlip.body.error.code).toBe("invalid_credentials");
    expect((await attempt(t, user.email, PASSWORD)).status).toBe(200);
  });

  test("failures counted on one instance slow down logins on another", async () => {
    const a = await createTestApp();
    apps.push(a);
    const b = await createTestApp({ testDb: a.testDb, clock: a.clock });
    apps.push(b);
    const user = await signUpFamily(a);
    await attempt(a, user.email, "wrong password!");
    await attempt(b, user.email, "wrong password!");
    await attempt(a, user.email, "wrong password!");
    const res = await attempt(b, user.email, PASSWORD);
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe("too_many_attempts");
  });

  test("an operator's password reset lifts a lock at once", async () => {
    const t = await createTestApp();
    apps.push(t);
    const operator = await createOperator(t);
    const user = await signUpFamily(t);
    await failUntilLocked(t, user);
    const issued = await t.request("POST", `/v1/users/${user.id}/password-reset`, {
      token: operator.token,
    });
    await t.request("POST", "/v1/auth/password-reset", {
      body: { token: issued.body.token, newPassword: "unlocked password" },
    });
    expect((await attempt(t, user.email, "unlocked password")).status).toBe(200);
  });
});

describe("secrets stay out of the logs", () => {
  test("no password, session token or reset token appears in the log text", async () => {
    const t = await createTestApp();
    try {
      const secrets: string[] = [];
      const password = "zebra-orchid-velvet-7731";
      const user = await signUpFamily(t, { password, phone: "+86 138 0013 8099" });
      secrets.push(password, user.token);
      const again = await login(t, user.email, password);
      secrets.push(again.token);
      await t.request("POST", "/v1/auth/login", {
        body: { login: user.email, password: "wrong-secret-lemon-42" },
      });
      secrets.push("wrong-secret-lemon-42");
      await t.request("GET", "/v1/me", { token: again.token });
      await t.request("GET", "/v1/me", { token: "forged-token-value-xyz" });
      secrets.push("forged-token-value-xyz");

      const operator = await createOperator(t);
      secrets.push(operator.token, PASSWORD);
      const issued = await t.request("POST", `/v1/users/${user.id}/password-reset`, {
        token: operator.token,
      });
      secrets.push(issued.body.token, encodeURIComponent(issued.body.token));
      await t.request("POST", "/v1/auth/password-reset", {
        body: { token: issued.body.token, newPassword: "kiwi-harbour-sunset-19" },
      });
      secrets.push("kiwi-harbour-sunset-19");
      const fresh = await login(t, user.email, "kiwi-harbour-sunset-19");
      await t.request("POST", "/v1/me/password", {
        token: fresh.token,
        body: { currentPassword: "kiwi-harbour-sunset-19", newPassword: "final-answer-plum-88" },
      });
      secrets.push(fresh.token, "final-answer-plum-88");

      const text = t.logText();
      // The logs are there (so an empty log cannot pass this test) ...
      expect(t.logs.filter((l) => l.msg === "request").length).toBeGreaterThanOrEqual(9);
      // ... and none of the secrets are.
      for (const secret of secrets) expect(text).not.toContain(secret);
    } finally {
      await t.close();
    }
  });
});
