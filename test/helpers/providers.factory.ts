import { unique } from "./factories";
import type { TestApp } from "./test-app";

export function providerInput(overrides: Record<string, unknown> = {}) {
  return {
    legalName: "Changning Home Care Services Co., Ltd.",
    displayName: "Changning Home Care",
    licenceNumber: unique("LIC-"),
    categories: ["cleaning", "meals", "companionship", "personal_care"],
    serviceArea: { localities: ["Changning"] },
    contact: { email: "desk@changning-care.example", phone: "+86 21 6240 0000" },
    onCall: { name: "Zhou Min", phone: "+86 139 1234 5678" },
    ...overrides,
  };
}

/** A provider signed up through the API by `token` (who becomes its admin); verified if asked. */
export async function createProvider(
  t: TestApp,
  token: string,
  overrides: Record<string, unknown> = {},
  verifyWith?: string,
) {
  const res = await t.request("POST", "/v1/providers", { token, body: providerInput(overrides) });
  if (res.status !== 201)
    throw new Error(`provider sign-up failed: ${res.status} ${JSON.stringify(res.body)}`);
  if (verifyWith) {
    const v = await t.request("POST", `/v1/providers/${res.body.id}/status`, {
      token: verifyWith,
      body: { status: "verified" },
    });
    if (v.status !== 200) throw new Error(`verify failed: ${v.status} ${JSON.stringify(v.body)}`);
  }
  return res.body as { id: string; status: string };
}

export function serviceInput(overrides: Record<string, unknown> = {}) {
  return {
    title: "Home cleaning",
    category: "cleaning",
    description: "Two hours of cleaning: floors, kitchen and bathroom.",
    priceMinor: 12000,
    currency: "CNY",
    unit: "per_visit",
    durationMinutes: 120,
    minNoticeHours: 24,
    availability: [{ day: "mon", start: "08:00", end: "18:00" }],
    ...overrides,
  };
}

export async function createService(
  t: TestApp,
  token: string,
  providerId: string,
  overrides: Record<string, unknown> = {},
) {
  const res = await t.request("POST", `/v1/providers/${providerId}/services`, {
    token,
    body: serviceInput(overrides),
  });
  if (res.status !== 201)
    throw new Error(`service creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; title: string };
}
