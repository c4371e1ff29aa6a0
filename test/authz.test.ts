// The authorisation matrix: each role and relationship against each resource.
// allow = 2xx; "403" = related but not allowed; "404" = no relationship (existence does not leak);
// "401" = not signed in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createOperator,
  createUserWithRoles,
  login,
  type SignedIn,
  signUpFamily,
} from "./helpers/factories";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

type Who =
  | "operator"
  | "primary"
  | "member"
  | "self"
  | "stranger"
  | "worker"
  | "provider"
  | "anonymous";
type Outcome = "allow" | "403" | "404" | "401";

let t: TestApp;
const actors = {} as Record<Exclude<Who, "anonymous">, SignedIn>;
let residentId: string;

beforeAll(async () => {
  t = await createTestApp();
  actors.operator = await createOperator(t);
  actors.primary = await signUpFamily(t, { displayName: "Primary" });
  actors.member = await signUpFamily(t, { displayName: "Member" });
  actors.stranger = await signUpFamily(t, { displayName: "Stranger" });
  actors.worker = await createUserWithRoles(t, actors.operator.token, ["worker"]);
  actors.provider = await createUserWithRoles(t, actors.operator.token, ["provider_admin"]);
  residentId = (await createResident(t, actors.primary.token, { relationship: "daughter" })).id;
  await joinCircle(t, actors.primary.token, residentId, actors.member);
  await t.request("POST", `/v1/residents/${residentId}/account`, {
    token: actors.operator.token,
    body: { email: "grandma.self@example.com", password: "grandma's password" },
  });
  actors.self = await login(t, "grandma.self@example.com", "grandma's password");
});
afterAll(() => t.close());

interface Resource {
  name: string;
  method: string;
  path: (id: string) => string;
  body?: (id: string) => Promise<unknown> | unknown;
  expect: Record<Who, Outcome>;
}

const readAll: Record<Who, Outcome> = {
  operator: "allow",
  primary: "allow",
  member: "allow",
  self: "allow",
  stranger: "404",
  worker: "404",
  provider: "404",
  anonymous: "401",
};
const manage: Record<Who, Outcome> = { ...readAll, member: "403", self: "403" };
const operatorOnly: Record<Who, Outcome> = {
  ...readAll,
  primary: "403",
  member: "403",
  self: "403",
};
const global = (operator: Outcome, others: Outcome): Record<Who, Outcome> => ({
  operator,
  primary: others,
  member: others,
  self: others,
  stranger: others,
  worker: others,
  provider: others,
  anonymous: "401",
});

async function currentPlanBody(id: string) {
  const res = await t.request("GET", `/v1/residents/${id}/care-plan`, {
    token: actors.operator.token,
  });
  return {
    baseVersion: res.body.version,
    plan: { ...res.body.plan, notes: `edited ${Math.random()}` },
  };
}

const resources: Resource[] = [
  { name: "read the profile", method: "GET", path: (id) => `/v1/residents/${id}`, expect: readAll },
  {
    name: "change the profile",
    method: "PATCH",
    path: (id) => `/v1/residents/${id}`,
    body: () => ({ preferredName: "Nainai" }),
    expect: manage,
  },
  {
    name: "read health notes",
    method: "GET",
    path: (id) => `/v1/residents/${id}/health`,
    expect: readAll,
  },
  {
    name: "change health notes",
    method: "PATCH",
    path: (id) => `/v1/residents/${id}/health`,
    body: () => ({ allergies: ["penicillin"] }),
    expect: manage,
  },
  {
    name: "read access notes",
    method: "GET",
    path: (id) => `/v1/residents/${id}/access-notes`,
    expect: { ...readAll, member: "403" },
  },
  {
    name: "change access notes",
    method: "PUT",
    path: (id) => `/v1/residents/${id}/access-notes`,
    body: () => ({ accessNotes: "code 1234" }),
    expect: manage,
  },
  {
    name: "pause",
    method: "POST",
    path: (id) => `/v1/residents/${id}/status`,
    body: () => ({ status: "paused", reason: "in hospital" }),
    expect: manage,
  },
  {
    name: "archive",
    method: "POST",
    path: (id) => `/v1/residents/${id}/status`,
    body: () => ({ status: "archived", reason: "moved" }),
    expect: operatorOnly,
  },
  {
    name: "confirm a registration",
    method: "POST",
    path: (id) => `/v1/residents/${id}/confirm`,
    expect: operatorOnly,
  },
  {
    name: "see the circle",
    method: "GET",
    path: (id) => `/v1/residents/${id}/circle`,
    expect: readAll,
  },
  {
    name: "invite to the circle",
    method: "POST",
    path: (id) => `/v1/residents/${id}/invitations`,
    body: () => ({ email: "cousin@example.com", relationship: "nephew" }),
    expect: manage,
  },
  {
    name: "list invitations",
    method: "GET",
    path: (id) => `/v1/residents/${id}/invitations`,
    expect: manage,
  },
  {
    name: "read the care plan",
    method: "GET",
    path: (id) => `/v1/residents/${id}/care-plan`,
    expect: readAll,
  },
  {
    name: "read care plan history",
    method: "GET",
    path: (id) => `/v1/residents/${id}/care-plan/versions`,
    expect: readAll,
  },
  {
    name: "change the care plan",
    method: "PUT",
    path: (id) => `/v1/residents/${id}/care-plan`,
    body: currentPlanBody,
    expect: manage,
  },
  {
    name: "create the resident's login",
    method: "POST",
    path: (id) => `/v1/residents/${id}/account`,
    body: () => ({ email: `r${Math.random()}@example.com`, password: "long enough password" }),
    expect: manage,
  },
  {
    name: "query the audit log",
    method: "GET",
    path: (id) => `/v1/audit?residentId=${id}`,
    expect: global("allow", "403"),
  },
  {
    name: "read settings",
    method: "GET",
    path: () => "/v1/settings",
    expect: global("allow", "403"),
  },
  {
    name: "change settings",
    method: "PATCH",
    path: () => "/v1/settings",
    body: () => ({ "invitations.ttl_hours": 72 }),
    expect: global("allow", "403"),
  },
  { name: "list accounts", method: "GET", path: () => "/v1/users", expect: global("allow", "403") },
  {
    name: "reset someone's password",
    method: "POST",
    path: () => `/v1/users/${actors.stranger.id}/password-reset`,
    expect: global("allow", "403"),
  },
];

// State-changing cases that would disturb the shared resident run against a fresh one with the
// same circle (the resident's own login belongs to the shared one, so "self" is unrelated there).
const onFreshResident = new Set([
  "archive",
  "confirm a registration",
  "create the resident's login",
]);

async function freshResident(): Promise<string> {
  const id = (await createResident(t, actors.primary.token, { relationship: "daughter" })).id;
  await joinCircle(t, actors.primary.token, id, actors.member);
  return id;
}

const whos: Who[] = [
  "operator",
  "primary",
  "member",
  "self",
  "stranger",
  "worker",
  "provider",
  "anonymous",
];
const cases = resources.flatMap((r) => whos.map((who) => [r.name, who, r] as const));

describe("authorisation matrix", () => {
  it.each(cases)("%s as %s", async (_name, who, resource) => {
    const fresh = onFreshResident.has(resource.name);
    const id = fresh ? await freshResident() : residentId;
    let expected = resource.expect[who];
    if (fresh && who === "self") expected = "404";
    const body = resource.body ? await resource.body(id) : undefined;
    const res = await t.request(resource.method, resource.path(id), {
      ...(who === "anonymous" ? {} : { token: actors[who].token }),
      ...(body !== undefined ? { body } : {}),
    });
    if (expected === "allow") {
      expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(200);
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    } else {
      expect(res.status, JSON.stringify(res.body)).toBe(Number(expected));
      expect(res.body.error.code).toBe(
        { "401": "unauthenticated", "403": "forbidden", "404": "not_found" }[expected],
      );
    }
  });

  it("lists show only what each one may see, never someone else's resident", async () => {
    const visible = async (who: Exclude<Who, "anonymous">) =>
      (
        await t.request("GET", "/v1/residents?limit=200", { token: actors[who].token })
      ).body.items.map((r: { id: string }) => r.id);
    expect(await visible("primary")).toContain(residentId);
    expect(await visible("member")).toContain(residentId);
    expect(await visible("self")).toEqual([residentId]);
    expect(await visible("operator")).toContain(residentId);
    for (const who of ["stranger", "worker", "provider"] as const)
      expect(await visible(who)).toEqual([]);
  });
});
