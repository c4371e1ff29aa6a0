import type { TestApp } from "./test-app";

export function residentInput(overrides: Record<string, unknown> = {}) {
  return {
    fullName: "Wang Shulan",
    preferredName: "Grandma Wang",
    dateOfBirth: "1944-03-18",
    address: {
      line1: "12 Lane 58, Xinhua Road",
      locality: "Changning",
      region: "Shanghai",
      postalCode: "200052",
      country: "CN",
      latitude: 31.2108,
      longitude: 121.4237,
    },
    timeZone: "Asia/Shanghai",
    language: "zh-Hans",
    phone: "+86 138 0013 8000",
    medicalNotes: "Type 2 diabetes; mild heart failure",
    allergies: ["penicillin"],
    accessNotes: "Key safe by the door, code 4711",
    ...overrides,
  };
}

/** A resident through the API: as an operator (confirmed), or as family with a relationship. */
export async function createResident(
  t: TestApp,
  token: string,
  overrides: Record<string, unknown> = {},
) {
  const res = await t.request("POST", "/v1/residents", { token, body: residentInput(overrides) });
  if (res.status !== 201)
    throw new Error(`resident creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; confirmed: boolean; myRelation: string | null };
}

/** Invites and accepts: `member` joins the resident's circle at `level`. */
export async function joinCircle(
  t: TestApp,
  primaryToken: string,
  residentId: string,
  member: { token: string; email: string },
  level: "primary" | "member" = "member",
  relationship = "son",
) {
  const inv = await t.request("POST", `/v1/residents/${residentId}/invitations`, {
    token: primaryToken,
    body: { email: member.email, relationship, level },
  });
  if (inv.status !== 201)
    throw new Error(`invite failed: ${inv.status} ${JSON.stringify(inv.body)}`);
  const acc = await t.request("POST", "/v1/invitations/accept", {
    token: member.token,
    body: { token: inv.body.token },
  });
  if (acc.status !== 200)
    throw new Error(`accept failed: ${acc.status} ${JSON.stringify(acc.body)}`);
}
