// The visit watch's world: a kincare whose jobs run only when the test drains them (so every
// timer fires at a clock the test chose), texting through the real twilio SDK to a fake Twilio
// and pushing to a local push service, on a database that can outlive one kincare; a family whose
// daughter can be reached, a worker with push on, and the provider's on-call number confirmed.
import { expect } from "vitest";
import { iso } from "../../src/clock";
import { KINCARE_NUMBER, mobile } from "./alerting";
import { type SignedIn, signUpFamily } from "./factories";
import type { FakePush, PushSubscription } from "./fake-push";
import type { FakeTwilio } from "./fake-twilio";
import { fund, idemKey, type Provider, verifiedProvider } from "./marketplace";
import { createResident, joinCircle } from "./residents.factory";
import { createTestApp, type TestApp } from "./test-app";
import type { TestDatabase } from "./test-db";
import { dayFrom, setCarePlan, verifiedWorker, type WorkerOf } from "./visits";

/** The on-call number of every provider verifiedProvider makes. */
export const ON_CALL_PHONE = "+8613900000002";

export interface Outside {
  twilio: FakeTwilio;
  push: FakePush;
}

/** A kincare on `testDb` (a fresh one if absent) whose jobs run only at t.scheduler.drain(). */
export function watchApp(
  outside: Outside,
  opts: { testDb?: TestDatabase; clock?: TestApp["clock"] } = {},
): Promise<TestApp> {
  return createTestApp({
    ...(opts.testDb ? { testDb: opts.testDb } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    jobs: false,
    pushAgent: outside.push.agent,
    env: {
      TWILIO_ACCOUNT_SID: outside.twilio.accountSid,
      TWILIO_AUTH_TOKEN: outside.twilio.authToken,
      TWILIO_FROM: KINCARE_NUMBER,
      TWILIO_API_URL: outside.twilio.url,
    },
  });
}

export interface ReachableMember extends SignedIn {
  phone: string;
  subscription: PushSubscription;
}

/** Pushes to this user's browser, through the API. */
export async function pushOn(t: TestApp, outside: Outside, token: string) {
  const subscription = await outside.push.subscribe();
  const res = await t.request("POST", "/v1/push/subscriptions", { token, body: subscription });
  expect(res.status).toBe(201);
  return subscription;
}

/** A family member whose phone is confirmed (with the code texted to it) and whose push is on. */
export async function reachableMember(
  t: TestApp,
  outside: Outside,
  displayName: string,
): Promise<ReachableMember> {
  const phone = mobile();
  const person = await signUpFamily(t, { displayName, phone });
  const sent = await t.request("POST", "/v1/me/phone/confirmation", { token: person.token });
  expect(sent.status).toBe(202);
  await t.scheduler.drain();
  const text = outside.twilio.messages.find((m) => m.to === phone && /\b\d{6}\b/.test(m.body));
  expect(text, `the confirmation code texted to ${phone}`).toBeDefined();
  const code = /\b(\d{6})\b/.exec(text!.body)![1]!;
  const ok = await t.request("POST", "/v1/me/phone/confirm", {
    token: person.token,
    body: { code },
  });
  expect(ok.body).toMatchObject({ confirmed: true });
  return { ...person, phone, subscription: await pushOn(t, outside, person.token) };
}

/**
 * The provider's on-call number, confirmed. kincare texts alerts only to confirmed numbers; it
 * asks the on-call person to reply when an operator verifies the provider (test/escalation.test.ts
 * shows that), but verifiedProvider writes the provider straight to the database, so the test
 * stands in for the owner's reply.
 */
export async function confirmOnCallPhone(t: TestApp) {
  const now = iso(t.clock.now());
  await t.db
    .insertInto("phone_numbers")
    .values({
      phone: ON_CALL_PHONE,
      confirmed_at: now,
      opted_out_at: null,
      code_hash: null,
      code_expires_at: null,
      code_attempts: 0,
      invited_at: null,
      language: null,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column("phone").doNothing())
    .execute();
}

export interface WatchedVisit {
  daughter: ReachableMember;
  son: SignedIn;
  residentId: string;
  provider: Provider;
  worker: WorkerOf & { subscription: PushSubscription };
  bookingId: string;
  visitId: string;
  startsAt: string;
  endsAt: string;
  price: number;
  /** The wallet's balance once the visit's price is in escrow. */
  walletAfterBooking: number;
}

/**
 * A once-off visit `days` ahead at `time` (Shanghai), accepted and assigned to a worker with push
 * on; the daughter (primary, first emergency contact) reachable by SMS and push.
 */
export async function watchedVisit(
  t: TestApp,
  outside: Outside,
  operatorToken: string,
  opts: { days?: number; time?: string } = {},
): Promise<WatchedVisit> {
  const daughter = await reachableMember(t, outside, "Li Na");
  const son = await signUpFamily(t, { displayName: "Li Lei" });
  const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
  await t.request("POST", `/v1/residents/${residentId}/confirm`, { token: operatorToken });
  await joinCircle(t, daughter.token, residentId, son);
  await setCarePlan(t, daughter.token, residentId);
  const provider = await verifiedProvider(t, operatorToken, { priceMinor: 12_000 });
  await confirmOnCallPhone(t);
  const worker = await verifiedWorker(t, operatorToken, provider);
  const workerPush = await pushOn(t, outside, worker.user.token);
  await fund(t, operatorToken, residentId, daughter.id, 60_000);
  await fund(t, operatorToken, residentId, son.id, 40_000);
  const booked = await book(t, daughter.token, residentId, provider, {
    date: dayFrom(t, opts.days ?? 2),
    time: opts.time ?? "09:00",
  });
  await assign(t, provider, booked.visitId, worker.id);
  return {
    daughter,
    son,
    residentId,
    provider,
    worker: { ...worker, subscription: workerPush },
    bookingId: booked.bookingId,
    visitId: booked.visitId,
    startsAt: booked.startsAt,
    endsAt: booked.endsAt,
    price: 12_000,
    walletAfterBooking: 100_000 - 12_000,
  };
}

/** A once-off booking through the API, accepted by the provider. */
export async function book(
  t: TestApp,
  token: string,
  residentId: string,
  provider: Provider,
  at: { date: string; time: string },
) {
  const booked = await t.request("POST", "/v1/bookings", {
    token,
    headers: { "idempotency-key": idemKey() },
    body: {
      residentId,
      serviceId: provider.serviceId,
      schedule: { type: "once", date: at.date, time: at.time },
    },
  });
  expect(booked.status).toBe(201);
  const accepted = await t.request("POST", `/v1/bookings/${booked.body.id}/answer`, {
    token: provider.admin.token,
    headers: { "idempotency-key": idemKey() },
    body: { accept: true },
  });
  expect(accepted.status).toBe(200);
  const visit = booked.body.visits[0] as { id: string; startsAt: string; endsAt: string };
  return {
    bookingId: booked.body.id as string,
    visitId: visit.id,
    startsAt: visit.startsAt,
    endsAt: visit.endsAt,
  };
}

export async function assign(t: TestApp, provider: Provider, visitId: string, workerId: string) {
  const res = await t.request("PUT", `/v1/visits/${visitId}/worker`, {
    token: provider.admin.token,
    body: { workerId, scope: "visit" },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** Sets the fake clock to `minutes` after an instant, and runs every job due by then. */
export async function at(t: TestApp, instant: string, minutes: number) {
  t.clock.set(new Date(Date.parse(instant) + minutes * 60_000));
  return t.scheduler.drain();
}

/** The alerts a visit raised, oldest first. */
export function visitAlerts(t: TestApp, visitId: string) {
  return (
    t.db
      .selectFrom("alerts")
      .selectAll()
      .where("source_type", "=", "visit")
      .where("source_id", "=", visitId)
      .orderBy("opened_at")
      // visit_late, visit_missed, visit_open: the order they come in.
      .orderBy("kind")
      .execute()
  );
}

export function deliveriesOf(t: TestApp, where: { alertId?: string; purpose?: string }) {
  let q = t.db.selectFrom("deliveries").selectAll();
  if (where.alertId) q = q.where("alert_id", "=", where.alertId);
  if (where.purpose) q = q.where("purpose", "=", where.purpose);
  return q.orderBy("created_at").orderBy("id").execute();
}

export async function timelineOf(t: TestApp, alertId: string) {
  const rows = await t.db
    .selectFrom("alert_timeline")
    .select(["type", "details"])
    .where("alert_id", "=", alertId)
    .orderBy("at")
    .orderBy("id")
    .execute();
  return rows.map((r) => ({
    type: r.type,
    details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
  }));
}

export async function noShows(t: TestApp, providerId: string) {
  const row = await t.db
    .selectFrom("providers")
    .select("no_show_count")
    .where("id", "=", providerId)
    .executeTakeFirstOrThrow();
  return Number(row.no_show_count);
}
