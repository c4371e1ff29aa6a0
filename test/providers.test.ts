import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assignableWorker } from "../src/providers/workers.service";
import {
  createOperator,
  createUserWithRoles,
  type SignedIn,
  signUpFamily,
} from "./helpers/factories";
import { createProvider, providerInput } from "./helpers/providers.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

const setStatus = (providerId: string, token: string, body: Record<string, unknown>) =>
  t.request("POST", `/v1/providers/${providerId}/status`, { token, body });

describe("providers", () => {
  it("an organisation signs up: its user becomes provider_admin, and it waits for an operator", async () => {
    const owner = await signUpFamily(t, { displayName: "Zhou Min" });
    const res = await t.request("POST", "/v1/providers", {
      token: owner.token,
      body: providerInput(),
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      status: "pending",
      displayName: "Changning Home Care",
      serviceArea: { localities: ["Changning"], centre: null, radiusKm: null },
      contact: { phone: "+862162400000" },
      onCall: { name: "Zhou Min", phone: "+8613912345678" },
      rating: { average: null, count: 0 },
      noShowCount: 0,
    });
    const me = await t.request("GET", "/v1/me", { token: owner.token });
    expect(me.body.roles).toContain("provider_admin");

    const mine = await t.request("GET", "/v1/providers/mine", { token: owner.token });
    expect(mine.body.items.map((p: { id: string }) => p.id)).toEqual([res.body.id]);
    const pending = await t.request("GET", "/v1/providers?status=pending", {
      token: operator.token,
    });
    expect(pending.body.items.map((p: { id: string }) => p.id)).toContain(res.body.id);
    // Operators only.
    expect((await t.request("GET", "/v1/providers", { token: owner.token })).status).toBe(403);
  });

  it("a licence number registered once cannot be registered again", async () => {
    const a = await signUpFamily(t);
    const b = await signUpFamily(t);
    const first = await createProvider(t, a.token, { licenceNumber: "SH-CARE-0001" });
    expect(first.status).toBe("pending");
    const again = await t.request("POST", "/v1/providers", {
      token: b.token,
      body: providerInput({ licenceNumber: "SH-CARE-0001" }),
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("already_exists");
  });

  it("only a verified provider is visible to others, and then only its public profile", async () => {
    const owner = await signUpFamily(t);
    const stranger = await signUpFamily(t);
    const p = await createProvider(t, owner.token);
    expect(
      (await t.request("GET", `/v1/providers/${p.id}`, { token: stranger.token })).status,
    ).toBe(404);
    const verified = await setStatus(p.id, operator.token, { status: "verified" });
    expect(verified.status).toBe(200);
    expect(verified.body.status).toBe("verified");

    const seen = await t.request("GET", `/v1/providers/${p.id}`, { token: stranger.token });
    expect(seen.status).toBe(200);
    expect(seen.body.displayName).toBe("Changning Home Care");
    for (const hidden of ["licenceNumber", "legalName", "contact", "onCall", "statusReason"])
      expect(seen.body).not.toHaveProperty(hidden);
    const full = await t.request("GET", `/v1/providers/${p.id}`, { token: owner.token });
    expect(full.body.licenceNumber).toBeDefined();
    expect(full.body.onCall.name).toBe("Zhou Min");
  });

  it("an operator rejects or suspends with a reason, which is audited; impossible moves are refused", async () => {
    const owner = await signUpFamily(t);
    const p = await createProvider(t, owner.token);

    const noReason = await setStatus(p.id, operator.token, { status: "rejected" });
    expect(noReason.status).toBe(400);
    expect(noReason.body.error.code).toBe("validation_failed");
    expect(noReason.body.error.details.issues).toEqual([
      expect.objectContaining({ path: "reason" }),
    ]);

    // The provider's own admin may not decide (403); an unrelated user does not see it (404).
    const own = await setStatus(p.id, owner.token, { status: "verified" });
    expect(own.status).toBe(403);
    expect(own.body.error.code).toBe("forbidden");
    const stranger = await signUpFamily(t);
    expect((await setStatus(p.id, stranger.token, { status: "verified" })).status).toBe(404);

    const rejected = await setStatus(p.id, operator.token, {
      status: "rejected",
      reason: "licence number does not match the registry",
    });
    expect(rejected.body).toMatchObject({
      status: "rejected",
      statusReason: "licence number does not match the registry",
    });
    const suspendRejected = await setStatus(p.id, operator.token, {
      status: "suspended",
      reason: "x",
    });
    expect(suspendRejected.status).toBe(409);
    expect(suspendRejected.body.error.code).toBe("invalid_state");

    expect((await setStatus(p.id, operator.token, { status: "verified" })).body.status).toBe(
      "verified",
    );
    const suspended = await setStatus(p.id, operator.token, {
      status: "suspended",
      reason: "two no-shows this week",
    });
    expect(suspended.body.status).toBe("suspended");

    const audit = await t.db
      .selectFrom("audit_log")
      .select(["action", "details"])
      .where("entity_id", "=", p.id)
      .orderBy("id")
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      "provider.signup",
      "provider.rejected",
      "provider.verified",
      "provider.suspended",
    ]);
    expect(JSON.parse(audit[3]!.details!)).toMatchObject({
      from: "verified",
      to: "suspended",
      reason: "two no-shows this week",
    });
  });

  it("the admin changes the service area; another provider's admin cannot touch it", async () => {
    const owner = await signUpFamily(t);
    const other = await signUpFamily(t);
    const p = await createProvider(t, owner.token);
    await createProvider(t, other.token);
    const patch = {
      serviceArea: {
        localities: ["Changning", "Xuhui"],
        centre: { latitude: 31.2, longitude: 121.43 },
        radiusKm: 8,
      },
    };
    const changed = await t.request("PATCH", `/v1/providers/${p.id}`, {
      token: owner.token,
      body: patch,
    });
    expect(changed.status).toBe(200);
    expect(changed.body.serviceArea).toEqual({
      localities: ["Changning", "Xuhui"],
      centre: { latitude: 31.2, longitude: 121.43 },
      radiusKm: 8,
    });
    expect(
      (await t.request("PATCH", `/v1/providers/${p.id}`, { token: other.token, body: patch }))
        .status,
    ).toBe(404);
    expect(
      (await t.request("PATCH", `/v1/providers/${p.id}`, { token: operator.token, body: patch }))
        .status,
    ).toBe(403);
  });

  it.each([
    ["no service area at all", { serviceArea: { localities: [] } }, "serviceArea.localities"],
    [
      "a centre without a radius",
      { serviceArea: { localities: [], centre: { latitude: 31, longitude: 121 } } },
      "serviceArea.radiusKm",
    ],
    ["an unknown category", { categories: ["gardening"] }, "categories.0"],
    [
      "a phone without a country code",
      { contact: { email: "a@b.example", phone: "12345" } },
      "contact.phone",
    ],
    ["an unknown field", { website: "x" }, "website"],
  ])("sign-up with %s is refused with the field named", async (_name, override, path) => {
    const owner = await signUpFamily(t);
    const res = await t.request("POST", "/v1/providers", {
      token: owner.token,
      body: providerInput(override),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details.issues.map((i: { path: string }) => i.path)).toContain(path);
  });

  it("signing up needs a session", async () => {
    const res = await t.request("POST", "/v1/providers", { body: providerInput() });
    expect(res.status).toBe(401);
  });
});

describe("workers", () => {
  const workerInput = (overrides: Record<string, unknown> = {}) => ({
    legalName: "Liu Fang",
    phone: "+86 138 0000 1111",
    photoRef: "photos/liu-fang.jpg",
    idDocumentNumber: "310105198001011234",
    skills: ["cleaning", "personal_care"],
    certificates: [
      { name: "Elderly care level 3", skill: "personal_care", expiresOn: "2026-12-31" },
    ],
    backgroundCheckedOn: "2026-10-01",
    ...overrides,
  });

  async function setUp() {
    const owner = await signUpFamily(t);
    const provider = await createProvider(t, owner.token, {}, operator.token);
    const res = await t.request("POST", `/v1/providers/${provider.id}/workers`, {
      token: owner.token,
      body: workerInput(),
    });
    expect(res.status).toBe(201);
    return { owner, provider, worker: res.body };
  }

  it("a worker is registered by real name; the identity document is stored encrypted and shown masked", async () => {
    const { owner, worker } = await setUp();
    expect(worker).toMatchObject({
      legalName: "Liu Fang",
      phone: "+8613800001111",
      idDocument: "••••••1234",
      status: "pending",
      certificates: [
        { name: "Elderly care level 3", skill: "personal_care", expiresOn: "2026-12-31" },
      ],
    });
    const got = await t.request("GET", `/v1/workers/${worker.id}`, { token: owner.token });
    const row = await t.db
      .selectFrom("workers")
      .selectAll()
      .where("id", "=", worker.id)
      .executeTakeFirstOrThrow();
    for (const text of [
      JSON.stringify(got.body),
      JSON.stringify(worker),
      JSON.stringify(row),
      t.logText(),
    ])
      expect(text).not.toContain("310105198001011234");
    expect(row.id_document_last4).toBe("1234");
    const audit = await t.db
      .selectFrom("audit_log")
      .select("details")
      .where("entity_id", "=", worker.id)
      .execute();
    expect(JSON.stringify(audit)).not.toContain("198001011234");
  });

  it("an operator verifies or suspends a worker; the provider's admin may not, another provider's admin sees nothing", async () => {
    const { owner, worker } = await setUp();
    const other = await signUpFamily(t);
    await createProvider(t, other.token);
    const path = `/v1/workers/${worker.id}/status`;
    expect(
      (await t.request("POST", path, { token: owner.token, body: { status: "verified" } })).status,
    ).toBe(403);
    expect(
      (await t.request("POST", path, { token: other.token, body: { status: "verified" } })).status,
    ).toBe(404);
    expect(
      (await t.request("GET", `/v1/workers/${worker.id}`, { token: other.token })).status,
    ).toBe(404);
    const noReason = await t.request("POST", path, {
      token: operator.token,
      body: { status: "suspended" },
    });
    expect(noReason.status).toBe(400);
    const verified = await t.request("POST", path, {
      token: operator.token,
      body: { status: "verified" },
    });
    expect(verified.body.status).toBe("verified");
    const suspended = await t.request("POST", path, {
      token: operator.token,
      body: { status: "suspended", reason: "complaint under review" },
    });
    expect(suspended.body).toMatchObject({
      status: "suspended",
      statusReason: "complaint under review",
    });
  });

  it("assignment is refused while unverified or suspended, when the certificate expired, or when the provider is not verified", async () => {
    const { owner, provider, worker } = await setUp();
    const at = new Date("2026-12-31T10:00:00Z");
    expect(await assignableWorker(t.db, worker.id, { skill: "personal_care", at })).toMatchObject({
      ok: false,
      reason: "unverified",
    });
    await t.request("POST", `/v1/workers/${worker.id}/status`, {
      token: operator.token,
      body: { status: "verified" },
    });
    expect(await assignableWorker(t.db, worker.id, { skill: "personal_care", at })).toEqual({
      ok: true,
      workerId: worker.id,
      providerId: provider.id,
    });
    // Valid through its expiry day in the visit's time zone, not a day after.
    expect(
      await assignableWorker(t.db, worker.id, {
        skill: "personal_care",
        at: new Date("2026-12-31T17:00:00Z"),
        timeZone: "Asia/Shanghai",
      }),
    ).toMatchObject({ ok: false, reason: "certificate_expired" });
    expect(
      await assignableWorker(t.db, worker.id, {
        skill: "personal_care",
        at: new Date("2027-01-01T09:00:00Z"),
      }),
    ).toMatchObject({
      ok: false,
      reason: "certificate_expired",
      message: expect.stringContaining("2026-12-31"),
    });
    // A skill with no certificate behind it needs none; one the worker lacks is refused.
    expect(await assignableWorker(t.db, worker.id, { skill: "cleaning", at })).toMatchObject({
      ok: true,
    });
    expect(await assignableWorker(t.db, worker.id, { skill: "nursing", at })).toMatchObject({
      ok: false,
      reason: "lacks_skill",
    });
    // A renewed certificate makes the worker assignable again.
    const renewed = await t.request("PATCH", `/v1/workers/${worker.id}`, {
      token: owner.token,
      body: {
        certificates: [
          { name: "Elderly care level 3", skill: "personal_care", expiresOn: "2029-12-31" },
        ],
      },
    });
    expect(renewed.status).toBe(200);
    expect(
      await assignableWorker(t.db, worker.id, {
        skill: "personal_care",
        at: new Date("2027-01-01T09:00:00Z"),
      }),
    ).toMatchObject({ ok: true });

    await setStatus(provider.id, operator.token, { status: "suspended", reason: "licence lapsed" });
    expect(await assignableWorker(t.db, worker.id, { skill: "cleaning", at })).toMatchObject({
      ok: false,
      reason: "provider_not_verified",
    });
    await setStatus(provider.id, operator.token, { status: "verified" });
    await t.request("POST", `/v1/workers/${worker.id}/status`, {
      token: operator.token,
      body: { status: "suspended", reason: "complaint" },
    });
    expect(await assignableWorker(t.db, worker.id, { at })).toMatchObject({
      ok: false,
      reason: "suspended",
    });
    expect(await assignableWorker(t.db, "no-such-worker", { at })).toMatchObject({
      ok: false,
      reason: "not_found",
    });
  });

  it("a worker's own account must hold the worker role, links to one worker only, and sees its own record", async () => {
    const { owner, provider } = await setUp();
    const notAWorker = await signUpFamily(t);
    const refused = await t.request("POST", `/v1/providers/${provider.id}/workers`, {
      token: owner.token,
      body: workerInput({ userId: notAWorker.id }),
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details.issues[0].path).toBe("userId");

    const account = await createUserWithRoles(t, operator.token, ["worker"]);
    const linked = await t.request("POST", `/v1/providers/${provider.id}/workers`, {
      token: owner.token,
      body: workerInput({ userId: account.id, idDocumentNumber: "G12345678" }),
    });
    expect(linked.status).toBe(201);
    expect(linked.body.idDocument).toBe("••••••5678");
    const twice = await t.request("POST", `/v1/providers/${provider.id}/workers`, {
      token: owner.token,
      body: workerInput({ userId: account.id }),
    });
    expect(twice.status).toBe(409);
    const own = await t.request("GET", `/v1/workers/${linked.body.id}`, { token: account.token });
    expect(own.status).toBe(200);

    const list = await t.request("GET", `/v1/providers/${provider.id}/workers`, {
      token: owner.token,
    });
    expect(list.body.items).toHaveLength(2);
    expect(
      (await t.request("GET", `/v1/providers/${provider.id}/workers`, { token: operator.token }))
        .status,
    ).toBe(200);
    expect(
      (await t.request("GET", `/v1/providers/${provider.id}/workers`, { token: notAWorker.token }))
        .status,
    ).toBe(404);
  });
});
