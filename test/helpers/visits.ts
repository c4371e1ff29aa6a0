// A care visit ready to happen: a family (daughter primary, son member) with money in the wallet,
// a verified provider, a verified worker with an account and the personal-care skill, a care plan
// with tasks and medications, and an accepted booking whose visit is assigned to the worker.
import { createUserWithRoles, type SignedIn, signUpFamily } from "./factories";
import { fund, idemKey, type Provider, verifiedProvider } from "./marketplace";
import { createResident, joinCircle } from "./residents.factory";
import type { TestApp } from "./test-app";

/** The default resident's home (test/helpers/residents.factory.ts). */
export const HOME = { latitude: 31.2108, longitude: 121.4237 };

/** A point `metres` north of the home. */
export function north(metres: number) {
  return { latitude: HOME.latitude + metres / 111_195, longitude: HOME.longitude };
}

export interface WorkerOf {
  id: string;
  user: SignedIn;
  name: string;
}

/** A verified worker of the provider, with a sign-in, the skill and a certificate. */
export async function verifiedWorker(
  t: TestApp,
  operatorToken: string,
  p: Provider,
  opts: { name?: string; certificateExpires?: string; skills?: string[] } = {},
): Promise<WorkerOf> {
  const user = await createUserWithRoles(t, operatorToken, ["worker"]);
  const name = opts.name ?? "Li Wei";
  const res = await t.request("POST", `/v1/providers/${p.id}/workers`, {
    token: p.admin.token,
    body: {
      legalName: name,
      phone: `+86139${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}`,
      idDocumentNumber: "310101199001011234",
      skills: opts.skills ?? ["personal_care"],
      certificates: opts.certificateExpires
        ? [{ name: "Care certificate", skill: "personal_care", expiresOn: opts.certificateExpires }]
        : [],
      userId: user.id,
    },
  });
  if (res.status !== 201) throw new Error(`worker: ${res.status} ${JSON.stringify(res.body)}`);
  const verified = await t.request("POST", `/v1/workers/${res.body.id}/status`, {
    token: operatorToken,
    body: { status: "verified" },
  });
  if (verified.status !== 200)
    throw new Error(`verify worker: ${verified.status} ${JSON.stringify(verified.body)}`);
  return { id: res.body.id, user, name };
}

/** The care plan's tasks and medications a morning visit carries (09:00–10:00 Shanghai). */
export const carePlanItems = {
  tasks: [
    {
      id: "wash",
      title: "Help with washing",
      instructions: null,
      schedule: { kind: "every_visit" },
    },
    {
      id: "breakfast",
      title: "Breakfast",
      instructions: "Low sugar",
      schedule: { kind: "daily", times: ["09:30"] },
    },
    {
      id: "evening-walk",
      title: "Evening walk",
      instructions: null,
      schedule: { kind: "daily", times: ["18:00"] },
    },
  ],
  medications: [
    {
      id: "metformin",
      name: "Metformin",
      dose: "500 mg tablet",
      times: ["09:15", "19:00"],
      instructions: "With food",
    },
  ],
};

export async function setCarePlan(t: TestApp, token: string, residentId: string) {
  const current = await t.request("GET", `/v1/residents/${residentId}/care-plan`, { token });
  if (current.status !== 200) throw new Error(`care plan: ${current.status}`);
  const res = await t.request("PUT", `/v1/residents/${residentId}/care-plan`, {
    token,
    body: {
      baseVersion: current.body.version,
      plan: { ...current.body.plan, ...carePlanItems },
    },
  });
  if (res.status !== 200)
    throw new Error(`care plan update: ${res.status} ${JSON.stringify(res.body)}`);
}

/** A local date `days` from the clock's now (the fake clock starts at 09:00 UTC, 17:00 Shanghai). */
export const dayFrom = (t: TestApp, days: number) =>
  new Date(t.clock.now().getTime() + days * 86_400_000).toISOString().slice(0, 10);

export interface VisitSetup {
  daughter: SignedIn;
  son: SignedIn;
  residentId: string;
  provider: Provider;
  worker: WorkerOf;
  bookingId: string;
  visitId: string;
  visitIds: string[];
  startsAt: string;
  endsAt: string;
}

/** Everything up to an assigned visit, `days` ahead at 09:00 Shanghai time. */
export async function assignedVisit(
  t: TestApp,
  operatorToken: string,
  opts: {
    days?: number;
    schedule?: Record<string, unknown>;
    assign?: boolean;
    priceMinor?: number;
  } = {},
): Promise<VisitSetup> {
  const daughter = await signUpFamily(t, { displayName: "Li Na" });
  const son = await signUpFamily(t, { displayName: "Li Lei" });
  const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
  await t.request("POST", `/v1/residents/${residentId}/confirm`, { token: operatorToken });
  await joinCircle(t, daughter.token, residentId, son);
  await setCarePlan(t, daughter.token, residentId);
  const provider = await verifiedProvider(t, operatorToken, {
    priceMinor: opts.priceMinor ?? 12_000,
  });
  const worker = await verifiedWorker(t, operatorToken, provider);
  await fund(t, operatorToken, residentId, daughter.id, 60_000);
  await fund(t, operatorToken, residentId, son.id, 40_000);
  const booked = await t.request("POST", "/v1/bookings", {
    token: daughter.token,
    headers: { "idempotency-key": idemKey() },
    body: {
      residentId,
      serviceId: provider.serviceId,
      schedule: opts.schedule ?? { type: "once", date: dayFrom(t, opts.days ?? 2), time: "09:00" },
      notes: "Ring twice, she is hard of hearing",
    },
  });
  if (booked.status !== 201)
    throw new Error(`booking: ${booked.status} ${JSON.stringify(booked.body)}`);
  const accepted = await t.request("POST", `/v1/bookings/${booked.body.id}/answer`, {
    token: provider.admin.token,
    headers: { "idempotency-key": idemKey() },
    body: { accept: true },
  });
  if (accepted.status !== 200) throw new Error(`accept: ${accepted.status}`);
  const visitIds = (booked.body.visits as { id: string }[]).map((v) => v.id);
  const first = booked.body.visits[0] as { id: string; startsAt: string; endsAt: string };
  if (opts.assign !== false) {
    const assigned = await t.request("PUT", `/v1/visits/${first.id}/worker`, {
      token: provider.admin.token,
      body: { workerId: worker.id, scope: "series" },
    });
    if (assigned.status !== 200)
      throw new Error(`assign: ${assigned.status} ${JSON.stringify(assigned.body)}`);
  }
  return {
    daughter,
    son,
    residentId,
    provider,
    worker,
    bookingId: booked.body.id,
    visitId: first.id,
    visitIds,
    startsAt: first.startsAt,
    endsAt: first.endsAt,
  };
}

/** A complete, valid check-out body for the default plan's 09:00–10:00 visit. */
export function fullCheckOut(clientId: string, extra: Record<string, unknown> = {}) {
  return {
    clientId,
    position: { ...north(20), accuracy: 15 },
    outcomes: [
      { kind: "task", itemId: "wash", dueTime: "", outcome: "done" },
      { kind: "task", itemId: "breakfast", dueTime: "09:30", outcome: "done" },
      {
        kind: "medication",
        itemId: "metformin",
        dueTime: "09:15",
        outcome: "refused",
        reason: "Said she already took it",
      },
    ],
    notes: "Washed and dressed; breakfast eaten.",
    wellbeing: { mood: "good", appetite: "good", concerns: "" },
    ...extra,
  };
}
