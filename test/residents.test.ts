import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createOperator,
  createUserWithRoles,
  login,
  type SignedIn,
  signUpFamily,
} from "./helpers/factories";
import { createResident, residentInput } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

describe("residents", () => {
  it("an operator registers a resident, confirmed at once, with a default care plan", async () => {
    const resident = await createResident(t, operator.token);
    expect(resident).toMatchObject({ confirmed: true, myRelation: "operator", status: "active" });
    const got = await t.request("GET", `/v1/residents/${resident.id}`, { token: operator.token });
    expect(got.status).toBe(200);
    expect(got.body.address).toMatchObject({
      locality: "Changning",
      country: "CN",
      latitude: 31.2108,
    });
    expect(got.body.phone).toBe("+8613800138000");
    // The profile never carries health or access text.
    expect(JSON.stringify(got.body)).not.toContain("diabetes");
    expect(JSON.stringify(got.body)).not.toContain("4711");
    const plan = await t.request("GET", `/v1/residents/${resident.id}/care-plan`, {
      token: operator.token,
    });
    expect(plan.body.version).toBe(1);
  });

  it("a daughter registers her mother: she becomes primary and first emergency contact; an operator confirms", async () => {
    const daughter = await signUpFamily(t, { displayName: "Li Mei" });
    const resident = await createResident(t, daughter.token, { relationship: "daughter" });
    expect(resident).toMatchObject({ confirmed: false, myRelation: "primary" });

    const circle = await t.request("GET", `/v1/residents/${resident.id}/circle`, {
      token: daughter.token,
    });
    expect(circle.body.items).toEqual([
      expect.objectContaining({ userId: daughter.id, level: "primary", relationship: "daughter" }),
    ]);
    const plan = await t.request("GET", `/v1/residents/${resident.id}/care-plan`, {
      token: daughter.token,
    });
    expect(plan.body.plan.emergencyContacts).toEqual([{ kind: "member", userId: daughter.id }]);

    const pending = await t.request("GET", "/v1/residents?pending=true", { token: operator.token });
    expect(pending.body.items.map((r: { id: string }) => r.id)).toContain(resident.id);

    expect(
      (await t.request("POST", `/v1/residents/${resident.id}/confirm`, { token: daughter.token }))
        .status,
    ).toBe(403);
    const confirmed = await t.request("POST", `/v1/residents/${resident.id}/confirm`, {
      token: operator.token,
    });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.confirmed).toBe(true);
    expect(
      (await t.request("POST", `/v1/residents/${resident.id}/confirm`, { token: operator.token }))
        .body.error.code,
    ).toBe("invalid_state");
  });

  it("a family member registering without a relationship is told what is missing", async () => {
    const son = await signUpFamily(t);
    const res = await t.request("POST", "/v1/residents", {
      token: son.token,
      body: residentInput(),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.issues[0].path).toBe("relationship");
  });

  it("lists only the residents of my own circles", async () => {
    const a = await signUpFamily(t);
    const b = await signUpFamily(t);
    const mine = await createResident(t, a.token, { relationship: "son", fullName: "Zhang Wei" });
    const theirs = await createResident(t, b.token, { relationship: "son", fullName: "Chen Jie" });
    const list = await t.request("GET", "/v1/residents", { token: a.token });
    const ids = list.body.items.map((r: { id: string }) => r.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(theirs.id);
    const all = await t.request("GET", "/v1/residents?q=chen", { token: operator.token });
    expect(all.body.items.map((r: { id: string }) => r.id)).toEqual([theirs.id]);
  });

  it("health notes and access notes are separate, audited reads", async () => {
    const resident = await createResident(t, operator.token);
    const health = await t.request("GET", `/v1/residents/${resident.id}/health`, {
      token: operator.token,
    });
    expect(health.body).toEqual({
      medicalNotes: "Type 2 diabetes; mild heart failure",
      allergies: ["penicillin"],
    });
    const access = await t.request("GET", `/v1/residents/${resident.id}/access-notes`, {
      token: operator.token,
    });
    expect(access.body.accessNotes).toBe("Key safe by the door, code 4711");

    const audit = await t.request("GET", `/v1/audit?residentId=${resident.id}`, {
      token: operator.token,
    });
    const actions = audit.body.items.map((e: { action: string }) => e.action);
    expect(actions).toContain("resident.health.read");
    expect(actions).toContain("resident.access_notes.read");
    // The log holds who read what, never the text itself.
    expect(JSON.stringify(audit.body)).not.toContain("4711");
    expect(t.logText()).not.toContain("4711");
    expect(t.logText()).not.toContain("diabetes");
  });

  it("updates the profile, health notes and access notes", async () => {
    const resident = await createResident(t, operator.token);
    const patched = await t.request("PATCH", `/v1/residents/${resident.id}`, {
      token: operator.token,
      body: { preferredName: "Nainai", timeZone: "Europe/London" },
    });
    expect(patched.body).toMatchObject({
      preferredName: "Nainai",
      timeZone: "Europe/London",
      fullName: "Wang Shulan",
    });
    const health = await t.request("PATCH", `/v1/residents/${resident.id}/health`, {
      token: operator.token,
      body: { allergies: ["penicillin", "peanuts"] },
    });
    expect(health.body.allergies).toEqual(["penicillin", "peanuts"]);
    expect(health.body.medicalNotes).toBe("Type 2 diabetes; mild heart failure");
    const access = await t.request("PUT", `/v1/residents/${resident.id}/access-notes`, {
      token: operator.token,
      body: { accessNotes: null },
    });
    expect(access.body.accessNotes).toBeNull();
  });

  it("pauses a resident in hospital, resumes, and only an operator archives", async () => {
    const daughter = await signUpFamily(t);
    const resident = await createResident(t, daughter.token, { relationship: "daughter" });
    const paused = await t.request("POST", `/v1/residents/${resident.id}/status`, {
      token: daughter.token,
      body: { status: "paused", from: "2026-11-23", until: "2026-12-05", reason: "in hospital" },
    });
    expect(paused.body).toMatchObject({
      status: "paused",
      pausedFrom: "2026-11-23",
      pausedUntil: "2026-12-05",
    });
    const backwards = await t.request("POST", `/v1/residents/${resident.id}/status`, {
      token: daughter.token,
      body: { status: "paused", from: "2026-12-05", until: "2026-11-23", reason: "x" },
    });
    expect(backwards.status).toBe(400);
    const resumed = await t.request("POST", `/v1/residents/${resident.id}/status`, {
      token: daughter.token,
      body: { status: "active" },
    });
    expect(resumed.body).toMatchObject({ status: "active", pausedFrom: null });
    const archive = { status: "archived", reason: "moved to a care home" };
    expect(
      (
        await t.request("POST", `/v1/residents/${resident.id}/status`, {
          token: daughter.token,
          body: archive,
        })
      ).status,
    ).toBe(403);
    const archived = await t.request("POST", `/v1/residents/${resident.id}/status`, {
      token: operator.token,
      body: archive,
    });
    expect(archived.body.status).toBe("archived");
  });

  it("a resident with their own login sees only themself", async () => {
    const resident = await createResident(t, operator.token);
    const other = await createResident(t, operator.token);
    const res = await t.request("POST", `/v1/residents/${resident.id}/account`, {
      token: operator.token,
      body: { phone: "+86 139 1234 5678", password: "grandma's own password" },
    });
    expect(res.status).toBe(201);
    const self = await login(t, "+8613912345678", "grandma's own password");
    const me = await t.request("GET", "/v1/me", { token: self.token });
    expect(me.body.roles).toEqual(["resident"]);
    expect(
      (await t.request("GET", `/v1/residents/${resident.id}`, { token: self.token })).body
        .myRelation,
    ).toBe("self");
    expect(
      (await t.request("GET", `/v1/residents/${other.id}`, { token: self.token })).status,
    ).toBe(404);
    const list = await t.request("GET", "/v1/residents", { token: self.token });
    expect(list.body.items.map((r: { id: string }) => r.id)).toEqual([resident.id]);
    const again = await t.request("POST", `/v1/residents/${resident.id}/account`, {
      token: operator.token,
      body: { email: "x@example.com", password: "another password" },
    });
    expect(again.body.error.code).toBe("already_exists");
  });

  it.each([
    ["an invalid time zone", { timeZone: "Mars/Olympus" }, "timeZone"],
    [
      "a latitude off the globe",
      { address: { ...residentInput().address, latitude: 123 } },
      "address.latitude",
    ],
    [
      "a bad country code",
      { address: { ...residentInput().address, country: "China" } },
      "address.country",
    ],
    ["a bad phone number", { phone: "12345" }, "phone"],
    ["an impossible birth date", { dateOfBirth: "1944-02-31" }, "dateOfBirth"],
    ["an unknown language", { language: "klingon" }, "language"],
  ])("refuses %s, naming the field", async (_what, override, path) => {
    const res = await t.request("POST", "/v1/residents", {
      token: operator.token,
      body: residentInput(override),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details.issues.map((i: { path: string }) => i.path)).toContain(path);
  });

  it("a worker or provider admin cannot register residents", async () => {
    const worker = await createUserWithRoles(t, operator.token, ["worker"]);
    const res = await t.request("POST", "/v1/residents", {
      token: worker.token,
      body: residentInput(),
    });
    expect(res.status).toBe(403);
  });
});
