// The visit watch through the real scheduler and the real database: a worker who does not come
// (late at start + 15 min, missed at start + 30, refunded at end + 2 h), one who comes late, one
// who never checks out; timers that survive a restart and fire once; the worker's day reminder;
// and the workers and provider of today's visit reached by any alert whose chain names them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { raiseAlert } from "../src/alerts/alerts.service";
import { insertJob } from "../src/jobs/jobs.repository";
import { accounts, balanceOf, ledgerInvariants } from "../src/ledger/ledger";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { type FakePush, startFakePush } from "./helpers/fake-push";
import { type FakeTwilio, startFakeTwilio } from "./helpers/fake-twilio";
import { idemKey } from "./helpers/marketplace";
import type { TestApp } from "./helpers/test-app";
import { createTestDatabase, type TestDatabase } from "./helpers/test-db";
import {
  assign,
  at,
  book,
  deliveriesOf,
  noShows,
  ON_CALL_PHONE,
  type Outside,
  timelineOf,
  visitAlerts,
  type WatchedVisit,
  watchApp,
  watchedVisit,
} from "./helpers/visit-watch";
import { fullCheckOut, north } from "./helpers/visits";

let twilio: FakeTwilio;
let push: FakePush;
let outside: Outside;
let t: TestApp;
let operator: SignedIn;
const databases: TestDatabase[] = [];

beforeAll(async () => {
  twilio = await startFakeTwilio();
  push = await startFakePush();
  outside = { twilio, push };
  t = await watchApp(outside);
  operator = await createOperator(t);
});
afterAll(async () => {
  await t?.close();
  for (const db of databases) await db.drop();
  await twilio?.close();
  await push?.close();
});

const pushesTo = (endpoint: string) => push.received.filter((p) => p.endpoint === endpoint);
const textBySid = (sid: string | null) =>
  twilio.messages.find((m) => m.sid !== null && m.sid === sid);

/** Who a "notifying" or "escalated_to_tier" timeline entry says was reached, sorted. */
const namesIn = (details: Record<string, unknown> | null | undefined) =>
  ((details?.recipients ?? []) as { name: string }[]).map((r) => r.name).sort();

async function visitDetail(app: TestApp, v: WatchedVisit, token = v.daughter.token) {
  const res = await app.request("GET", `/v1/visits/${v.visitId}`, { token });
  expect(res.status).toBe(200);
  return res.body;
}

function missedRefund(app: TestApp, visitId: string, token: string, key = idemKey()) {
  return app.request("POST", `/v1/visits/${visitId}/missed-refund`, {
    token,
    headers: { "idempotency-key": key },
  });
}

function checkIn(app: TestApp, v: WatchedVisit, clientId: string) {
  return app.request("POST", `/v1/visits/${v.visitId}/check-in`, {
    token: v.worker.user.token,
    body: { clientId, position: { ...north(40), accuracy: 20 } },
  });
}

const wallet = (app: TestApp, v: WatchedVisit) =>
  balanceOf(app.db, accounts.wallet(v.residentId).id);
const escrow = (app: TestApp, v: WatchedVisit) => balanceOf(app.db, accounts.escrow(v.visitId).id);

async function expectLedgerSound(app: TestApp) {
  expect(await ledgerInvariants(app.db)).toEqual({
    total: 0,
    unbalancedTransactions: [],
    negativeAccounts: [],
  });
}

describe("a worker who does not come", () => {
  it("late at start + 15 min (not a second before): the on-call phone and the worker are alerted, the family told", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.startsAt, 14 + 59 / 60);
    expect(await visitAlerts(t, v.visitId)).toEqual([]);
    expect(await deliveriesOf(t, { purpose: "visit_late" })).toEqual(
      expect.not.arrayContaining([expect.objectContaining({ user_id: v.daughter.id })]),
    );
    expect((await visitDetail(t, v)).state).toBe("assigned");

    await at(t, v.startsAt, 15);
    const [late, ...more] = await visitAlerts(t, v.visitId);
    expect(more).toEqual([]);
    expect(late).toMatchObject({
      kind: "visit_late",
      severity: "warning",
      status: "open",
      source_type: "visit",
      source_id: v.visitId,
      resident_id: v.residentId,
      opened_at: new Date(Date.parse(v.startsAt) + 15 * 60_000).toISOString(),
    });

    // The provider's on-call phone gets a text, through Twilio, with the alert's reply code.
    const sent = await deliveriesOf(t, { alertId: late!.id });
    const onCall = sent.filter((d) => d.phone === ON_CALL_PHONE);
    expect(onCall).toHaveLength(1);
    // Twilio took it ("queued" is its answer to a send).
    expect(onCall[0]).toMatchObject({ purpose: "alert_step", channel: "sms", status: "queued" });
    const text = textBySid(onCall[0]!.provider_ref);
    expect(text?.to).toBe(ON_CALL_PHONE);
    expect(text?.body).toContain(late!.code!);
    // The worker gets a push about it.
    const toWorker = sent.filter((d) => d.user_id === v.worker.user.id);
    expect(toWorker.map((d) => [d.channel, d.status])).toEqual([["push", "sent"]]);
    expect(
      pushesTo(v.worker.subscription.endpoint).filter(
        (p) => (p.payload as { alertId?: string }).alertId === late!.id,
      ),
    ).toHaveLength(1);
    // The family is not on a late visit's chain: they get a notice instead.
    expect(sent.filter((d) => d.user_id === v.daughter.id || d.user_id === v.son.id)).toEqual([]);
    const notices = (await deliveriesOf(t, { purpose: "visit_late" })).filter((d) =>
      [v.daughter.id, v.son.id].includes(d.user_id ?? ""),
    );
    expect(
      notices.map((d) => [d.user_id === v.daughter.id ? "daughter" : "son", d.channel, d.status]),
    ).toEqual(
      expect.arrayContaining([
        ["daughter", "push", "sent"],
        ["daughter", "sms", "queued"],
        ["son", "push", "skipped"],
      ]),
    );
    expect(notices).toHaveLength(3);
    expect(JSON.parse(notices[0]!.message)).toMatchObject({
      t: "visit_late",
      startsAt: v.startsAt,
    });
    expect(
      pushesTo(v.daughter.subscription.endpoint).filter((p) =>
        /late|迟到/i.test(JSON.stringify(p.payload)),
      ),
    ).toHaveLength(1);
    const timeline = await timelineOf(t, late!.id);
    const notifying = timeline.find((e) => e.type === "notifying");
    expect(namesIn(notifying?.details)).toEqual(["User worker", "Zhang Min"]);

    const detail = await visitDetail(t, v);
    expect(detail).toMatchObject({ state: "late", late: true, missed: false });
    expect(detail.refundableAsMissed).toBe(false);
    // Not missed yet: no money back.
    expect((await missedRefund(t, v.visitId, v.daughter.token)).status).toBe(409);

    // Running the watch again at the same time raises nothing more.
    await t.scheduler.drain();
    expect(await visitAlerts(t, v.visitId)).toHaveLength(1);
    expect(await deliveriesOf(t, { alertId: late!.id })).toHaveLength(sent.length);
  });

  it("missed at start + 30 min: the late alert gives way to visit_missed through the resident's chain; the daughter takes the money back once", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.startsAt, 15);
    await at(t, v.startsAt, 29);
    expect((await visitAlerts(t, v.visitId)).map((a) => [a.kind, a.status])).toEqual([
      ["visit_late", "open"],
    ]);

    await at(t, v.startsAt, 30);
    const [late, missed, ...more] = await visitAlerts(t, v.visitId);
    expect(more).toEqual([]);
    expect(late).toMatchObject({
      kind: "visit_late",
      status: "resolved",
      close_reason: "the visit is now missed",
    });
    expect(missed).toMatchObject({
      kind: "visit_missed",
      severity: "warning",
      status: "open",
      source_type: "visit",
      source_id: v.visitId,
    });
    // The resident's own (default) chain: the first emergency contact, the daughter, with the
    // visit's worker.
    const chain = JSON.parse(missed!.chain!);
    expect(chain.tiers[0].recipients).toEqual([
      { kind: "member", userId: v.daughter.id },
      { kind: "visit_workers" },
    ]);
    const sent = await deliveriesOf(t, { alertId: missed!.id });
    const toDaughter = sent.filter((d) => d.user_id === v.daughter.id);
    expect(toDaughter.map((d) => [d.channel, d.status]).sort()).toEqual([
      ["push", "sent"],
      ["sms", "queued"],
    ]);
    const text = textBySid(toDaughter.find((d) => d.channel === "sms")!.provider_ref);
    expect(text?.to).toBe(v.daughter.phone);
    expect(text?.body).toContain(missed!.code!);
    expect(
      sent.filter((d) => d.user_id === v.worker.user.id).map((d) => [d.channel, d.status]),
    ).toEqual([["push", "sent"]]);

    const detail = await visitDetail(t, v);
    expect(detail).toMatchObject({
      status: "scheduled",
      state: "missed",
      late: true,
      missed: true,
      refundableAsMissed: true,
    });

    // Someone from another family learns nothing, and moves nothing.
    const stranger = await signUpFamily(t, { displayName: "Zhao Yun" });
    const denied = await missedRefund(t, v.visitId, stranger.token);
    expect(denied.status).toBe(404);
    expect(await wallet(t, v)).toBe(v.walletAfterBooking);

    const noShowsBefore = await noShows(t, v.provider.id);
    expect(noShowsBefore).toBe(0);
    const key = idemKey();
    const refund = await missedRefund(t, v.visitId, v.daughter.token, key);
    expect(refund.status).toBe(200);
    expect(refund.body).toMatchObject({ id: v.visitId, status: "refunded", price: v.price });
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    expect(await escrow(t, v)).toBe(0);
    expect(await noShows(t, v.provider.id)).toBe(1);

    const retry = await missedRefund(t, v.visitId, v.daughter.token, key);
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(refund.body);
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    expect(await noShows(t, v.provider.id)).toBe(1);
    const postings = await t.db
      .selectFrom("ledger_transactions")
      .select("kind")
      .where("reference_type", "=", "visit")
      .where("reference_id", "=", v.visitId)
      .orderBy("created_at")
      .execute();
    expect(postings.map((p) => p.kind)).toEqual(["visit_escrow", "visit_refund"]);
    // A new request (another key) is refused: the visit is no longer missed-and-open.
    expect((await missedRefund(t, v.visitId, v.daughter.token)).status).toBe(409);
    expect(await visitDetail(t, v)).toMatchObject({
      status: "refunded",
      state: "refunded",
      refundableAsMissed: false,
    });

    // The end-of-visit check finds it settled: no second refund, no visit_open.
    await at(t, v.endsAt, 120);
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    expect(await noShows(t, v.provider.id)).toBe(1);
    expect((await visitAlerts(t, v.visitId)).map((a) => a.kind)).toEqual([
      "visit_late",
      "visit_missed",
    ]);
    await expectLedgerSound(t);
  });

  it("nobody came and nobody asked: refunded in full at end + 2 h, with no visit_open alert", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.startsAt, 15);
    await at(t, v.startsAt, 30);
    await at(t, v.endsAt, 119);
    expect((await visitDetail(t, v)).status).toBe("scheduled");
    expect(await wallet(t, v)).toBe(v.walletAfterBooking);

    await at(t, v.endsAt, 120);
    expect(await visitDetail(t, v)).toMatchObject({
      status: "refunded",
      state: "refunded",
      refundableAsMissed: false,
    });
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    expect(await escrow(t, v)).toBe(0);
    expect(await noShows(t, v.provider.id)).toBe(1);
    expect((await visitAlerts(t, v.visitId)).map((a) => a.kind)).toEqual([
      "visit_late",
      "visit_missed",
    ]);
    // The family's claim now finds nothing to refund.
    expect((await missedRefund(t, v.visitId, v.daughter.token)).status).toBe(409);
    await t.scheduler.drain();
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    expect(await noShows(t, v.provider.id)).toBe(1);
    await expectLedgerSound(t);
  });

  it("kincare down through the whole visit: the checks all come due at once, and the money still goes back", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.endsAt, 180);
    await t.scheduler.drain();
    expect(await visitDetail(t, v)).toMatchObject({ status: "refunded", missed: true });
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    expect(await escrow(t, v)).toBe(0);
    expect(await noShows(t, v.provider.id)).toBe(1);
    // No alert is left chasing a visit that is settled.
    const open = (await visitAlerts(t, v.visitId)).filter((a) => a.closed_at === null);
    expect(open).toEqual([]);
    await expectLedgerSound(t);
  });

  it("a visit without its timers (made before the watch existed, or its jobs lost) is caught by the audit", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    const removed = await t.db
      .deleteFrom("jobs")
      .where("dedupe_key", "like", `visit-watch:${v.visitId}:%`)
      .executeTakeFirst();
    expect(Number(removed.numDeletedRows)).toBe(3);
    await at(t, v.startsAt, 15);
    expect(await visitAlerts(t, v.visitId)).toEqual([]); // within the audit's minute of grace
    await at(t, v.startsAt, 17);
    expect((await visitAlerts(t, v.visitId)).map((a) => [a.kind, a.status])).toEqual([
      ["visit_late", "open"],
    ]);
    await at(t, v.startsAt, 32);
    expect((await visitAlerts(t, v.visitId)).map((a) => [a.kind, a.status])).toEqual([
      ["visit_late", "resolved"],
      ["visit_missed", "open"],
    ]);
    await at(t, v.endsAt, 122);
    expect((await visitDetail(t, v)).status).toBe("refunded");
    expect(await noShows(t, v.provider.id)).toBe(1);
  });

  it("an offline check-in that arrives after the refund is kept in the entry log, flagged, and moves no money", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.startsAt, 15);
    await at(t, v.startsAt, 30);
    expect((await missedRefund(t, v.visitId, v.daughter.token)).status).toBe(200);
    const walletAfterRefund = await wallet(t, v);
    // Li Wei was there at start + 25 min, with no signal; her phone syncs at start + 40.
    t.clock.set(new Date(Date.parse(v.startsAt) + 40 * 60_000));
    const late = await t.request("POST", `/v1/visits/${v.visitId}/check-in`, {
      token: v.worker.user.token,
      body: {
        clientId: "offline-after-refund",
        occurredAt: new Date(Date.parse(v.startsAt) + 25 * 60_000).toISOString(),
        capturedOffline: true,
        position: { ...north(30), accuracy: 15 },
      },
    });
    expect(late.status).toBe(201);
    expect(late.body).toMatchObject({
      afterSettlement: true,
      entry: { offline: true, verification: { verified: true, exception: "after_settlement" } },
    });
    expect(await visitDetail(t, v)).toMatchObject({ status: "refunded" });
    expect(await wallet(t, v)).toBe(walletAfterRefund);
    const log = await t.request("GET", `/v1/residents/${v.residentId}/entries`, {
      token: v.daughter.token,
    });
    expect(log.body.items.map((e: { clientId: string }) => e.clientId)).toContain(
      "offline-after-refund",
    );
    // A check-in captured after the refund is still refused.
    const after = await t.request("POST", `/v1/visits/${v.visitId}/check-in`, {
      token: v.worker.user.token,
      body: { clientId: "live-after-refund", position: { ...north(30), accuracy: 15 } },
    });
    expect(after.status).toBe(409);
    await expectLedgerSound(t);
  });

  it("two claims at once (two keys): one refund, one no-show on the provider's record", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.startsAt, 15);
    await at(t, v.startsAt, 30);
    const answers = await Promise.all([
      missedRefund(t, v.visitId, v.daughter.token),
      missedRefund(t, v.visitId, v.daughter.token),
      missedRefund(t, v.visitId, operator.token),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409]);
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    expect(await noShows(t, v.provider.id)).toBe(1);
    await expectLedgerSound(t);
  });

  it("a visit cancelled in time is not watched: nothing raised, nothing refunded twice", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    const cancelled = await t.request("POST", `/v1/bookings/${v.bookingId}/cancel`, {
      token: v.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: { visitId: v.visitId, reason: "She is in hospital" },
    });
    expect(cancelled.status).toBe(200);
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    await at(t, v.startsAt, 15);
    await at(t, v.startsAt, 30);
    await at(t, v.endsAt, 120);
    expect(await visitAlerts(t, v.visitId)).toEqual([]);
    expect(await wallet(t, v)).toBe(v.walletAfterBooking + v.price);
    expect(await noShows(t, v.provider.id)).toBe(0);
    expect((await visitDetail(t, v)).state).toBe("cancelled");
  });
});

describe("a worker who comes late", () => {
  it("checking in after the late alert resolves it; no missed alert, no refund, and a checked-out visit raises nothing at end + 2 h", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.startsAt, 15);
    const [late] = await visitAlerts(t, v.visitId);
    expect(late).toMatchObject({ kind: "visit_late", status: "open" });

    await at(t, v.startsAt, 20);
    const came = await checkIn(t, v, "late-in-1");
    expect(came.status).toBe(201);
    const [closed, ...more] = await visitAlerts(t, v.visitId);
    expect(more).toEqual([]);
    expect(closed).toMatchObject({ id: late!.id, status: "resolved" });
    expect(closed!.close_reason).toMatch(/^Li Wei checked in at /);

    await at(t, v.startsAt, 30);
    expect((await visitAlerts(t, v.visitId)).map((a) => a.kind)).toEqual(["visit_late"]);
    const detail = await visitDetail(t, v);
    expect(detail).toMatchObject({ state: "in_progress", missed: false });
    expect(detail.refundableAsMissed).toBe(false);
    const refused = await missedRefund(t, v.visitId, v.daughter.token);
    expect(refused.status).toBe(409);
    expect(await wallet(t, v)).toBe(v.walletAfterBooking);

    t.clock.set(new Date(Date.parse(v.endsAt) + 20 * 60_000));
    const out = await t.request("POST", `/v1/visits/${v.visitId}/check-out`, {
      token: v.worker.user.token,
      body: fullCheckOut("late-out-1"),
    });
    expect(out.status, JSON.stringify(out.body)).toBe(201);
    await at(t, v.endsAt, 120);
    expect((await visitAlerts(t, v.visitId)).map((a) => a.kind)).toEqual(["visit_late"]);
    expect((await visitDetail(t, v)).status).toBe("verified");
    expect(await escrow(t, v)).toBe(v.price);
    expect(await noShows(t, v.provider.id)).toBe(0);
  });

  it("checking in after the missed alert resolves it, and the visit can no longer be refunded as missed", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.startsAt, 15);
    await at(t, v.startsAt, 30);
    expect((await visitDetail(t, v)).refundableAsMissed).toBe(true);

    await at(t, v.startsAt, 40);
    expect((await checkIn(t, v, "later-in-1")).status).toBe(201);
    const alerts = await visitAlerts(t, v.visitId);
    expect(alerts.map((a) => [a.kind, a.status])).toEqual([
      ["visit_late", "resolved"],
      ["visit_missed", "resolved"],
    ]);
    expect(alerts[1]!.close_reason).toMatch(/^Li Wei checked in at /);
    const detail = await visitDetail(t, v);
    expect(detail).toMatchObject({ state: "in_progress", missed: true, refundableAsMissed: false });
    const refused = await missedRefund(t, v.visitId, v.daughter.token);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("invalid_state");
    expect(await wallet(t, v)).toBe(v.walletAfterBooking);
    expect(await noShows(t, v.provider.id)).toBe(0);
  });
});

describe("a worker who never checks out", () => {
  it("raises visit_open at end + 2 h to the worker and the on-call phone, then the desk; the check-out resolves it", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await at(t, v.startsAt, 5);
    expect((await checkIn(t, v, "open-in-1")).status).toBe(201);
    await at(t, v.startsAt, 30);
    await at(t, v.endsAt, 119);
    expect(await visitAlerts(t, v.visitId)).toEqual([]);

    await at(t, v.endsAt, 120);
    const [open, ...more] = await visitAlerts(t, v.visitId);
    expect(more).toEqual([]);
    expect(open).toMatchObject({
      kind: "visit_open",
      severity: "warning",
      status: "open",
      source_type: "visit",
      source_id: v.visitId,
    });
    const chain = JSON.parse(open!.chain!);
    expect(chain.tiers.map((tier: { recipients: unknown }) => tier.recipients)).toEqual([
      [{ kind: "visit_workers" }, { kind: "provider_on_call" }],
      [{ kind: "desk" }],
    ]);
    const first = await deliveriesOf(t, { alertId: open!.id });
    expect(
      first.map((d) => [d.user_id === v.worker.user.id ? "worker" : d.phone, d.channel, d.status]),
    ).toEqual(
      expect.arrayContaining([
        ["worker", "push", "sent"],
        [ON_CALL_PHONE, "sms", "queued"],
      ]),
    );
    expect(first).toHaveLength(2);
    expect(textBySid(first.find((d) => d.phone === ON_CALL_PHONE)!.provider_ref)?.to).toBe(
      ON_CALL_PHONE,
    );
    // Nobody in the family is paged for it.
    expect(first.some((d) => d.user_id === v.daughter.id)).toBe(false);

    // Unanswered for the tier's 20 minutes: the operator desk.
    await at(t, v.endsAt, 139);
    expect(await deliveriesOf(t, { alertId: open!.id })).toHaveLength(2);
    await at(t, v.endsAt, 140);
    const desk = (await timelineOf(t, open!.id)).find((e) => e.type === "escalated_to_tier");
    expect(desk?.details).toMatchObject({ step: 1, tier: 2 });
    expect(namesIn(desk?.details)).toContain("Night Desk");
    expect((await deliveriesOf(t, { alertId: open!.id })).map((d) => d.user_id)).toContain(
      operator.id,
    );

    // The worker sends the check-out the phone kept offline since just after the end.
    const out = await t.request("POST", `/v1/visits/${v.visitId}/check-out`, {
      token: v.worker.user.token,
      body: fullCheckOut("open-out-1", {
        occurredAt: new Date(Date.parse(v.endsAt) + 5 * 60_000).toISOString(),
        capturedOffline: true,
      }),
    });
    expect(out.status, JSON.stringify(out.body)).toBe(201);
    const [resolved] = await visitAlerts(t, v.visitId);
    expect(resolved).toMatchObject({
      id: open!.id,
      status: "resolved",
      close_reason: "Li Wei checked out",
    });
    expect((await visitDetail(t, v)).status).toBe("verified");
    // A verified visit is not refunded as missed at any point.
    await t.scheduler.drain();
    expect(await escrow(t, v)).toBe(v.price);
    expect(await noShows(t, v.provider.id)).toBe(0);
  });
});

describe("the watch's timers are jobs in the database", () => {
  it("survive a stop: a new kincare on the same database raises late and missed once each, however often the jobs run", async () => {
    const testDb = await createTestDatabase();
    databases.push(testDb);
    const first = await watchApp(outside, { testDb });
    const clock = first.clock;
    let v: WatchedVisit;
    try {
      const op = await createOperator(first);
      v = await watchedVisit(first, outside, op.token);
      const jobs = await first.db
        .selectFrom("jobs")
        .select(["payload", "due_at", "status"])
        .where("kind", "=", "visits.watch")
        .execute();
      const due = (ms: number) => new Date(ms).toISOString();
      expect(
        jobs
          .map((j) => ({ ...JSON.parse(j.payload), dueAt: j.due_at, status: j.status }))
          .filter((j) => j.visitId === v.visitId)
          .sort((a, b) => a.dueAt.localeCompare(b.dueAt)),
      ).toEqual([
        {
          visitId: v.visitId,
          check: "late",
          dueAt: due(Date.parse(v.startsAt) + 15 * 60_000),
          status: "pending",
        },
        {
          visitId: v.visitId,
          check: "missed",
          dueAt: due(Date.parse(v.startsAt) + 30 * 60_000),
          status: "pending",
        },
        {
          visitId: v.visitId,
          check: "open",
          dueAt: due(Date.parse(v.endsAt) + 120 * 60_000),
          status: "pending",
        },
      ]);
    } finally {
      await first.close();
    }

    // Down through the start of the visit and well past its missed mark.
    clock.set(new Date(Date.parse(v.startsAt) + 31 * 60_000));
    const second = await watchApp(outside, { testDb, clock });
    try {
      await second.scheduler.drain();
      const once = await visitAlerts(second, v.visitId);
      expect(once.map((a) => [a.kind, a.status])).toEqual([
        ["visit_late", "resolved"],
        ["visit_missed", "open"],
      ]);
      const deliveries = await second.db
        .selectFrom("deliveries")
        .select("id")
        .where("alert_id", "in", [once[0]!.id, once[1]!.id])
        .execute();
      expect(deliveries.length).toBeGreaterThan(0);
      expect(await visitDetail(second, v)).toMatchObject({ state: "missed", missed: true });

      // Run again, and run the very same checks again (a job delivered twice): nothing more.
      await second.scheduler.drain();
      await second.db.transaction().execute(async (trx) => {
        for (const check of ["late", "missed"]) {
          await insertJob(
            trx,
            {
              kind: "visits.watch",
              payload: { visitId: v.visitId, check },
              runAt: clock.now(),
              maxAttempts: 3,
            },
            clock.now(),
          );
        }
      });
      expect(await second.scheduler.drain()).toBeGreaterThanOrEqual(2);
      const again = await visitAlerts(second, v.visitId);
      expect(again.map((a) => [a.id, a.kind, a.status])).toEqual(
        once.map((a) => [a.id, a.kind, a.status]),
      );
      const after = await second.db
        .selectFrom("deliveries")
        .select("id")
        .where("alert_id", "in", [once[0]!.id, once[1]!.id])
        .execute();
      expect(after).toHaveLength(deliveries.length);
      const failed = await second.db
        .selectFrom("jobs")
        .select(["kind", "last_error"])
        .where("kind", "=", "visits.watch")
        .where("last_error", "is not", null)
        .execute();
      expect(failed).toEqual([]);
    } finally {
      await second.close();
    }
  });
});

describe("the watch's checks out of order", () => {
  it("the missed check finds no late mark (its job held up): it marks both; the late check, run after, adds nothing", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    // The late check's job was held up (a failed attempt waiting out its backoff, say).
    const held = await t.db
      .updateTable("jobs")
      .set({ due_at: new Date(Date.parse(v.startsAt) + 45 * 60_000).toISOString() })
      .where("kind", "=", "visits.watch")
      .where("dedupe_key", "=", `visit-watch:${v.visitId}:late`)
      .where("status", "=", "pending")
      .executeTakeFirst();
    expect(Number(held.numUpdatedRows)).toBe(1);
    await at(t, v.startsAt, 30);
    const alerts = await visitAlerts(t, v.visitId);
    expect(alerts.map((a) => [a.kind, a.status, a.close_reason])).toEqual([
      ["visit_late", "resolved", "the visit is now missed"],
      ["visit_missed", "open", null],
    ]);
    expect(await visitDetail(t, v)).toMatchObject({ state: "missed", late: true, missed: true });
    const notices = async () =>
      (await deliveriesOf(t, { purpose: "visit_late" })).filter(
        (d) => d.user_id === v.daughter.id && d.channel === "push",
      );
    expect(await notices()).toHaveLength(1);

    await at(t, v.startsAt, 45);
    expect(
      (
        await t.db
          .selectFrom("jobs")
          .select("status")
          .where("dedupe_key", "=", `visit-watch:${v.visitId}:late`)
          .executeTakeFirstOrThrow()
      ).status,
    ).toBe("done");
    expect((await visitAlerts(t, v.visitId)).map((a) => [a.id, a.status])).toEqual(
      alerts.map((a) => [a.id, a.status]),
    );
    expect(await notices()).toHaveLength(1);
    // The late alert closed before its first step ran: nobody was paged for it.
    expect(await deliveriesOf(t, { alertId: alerts[0]!.id })).toEqual([]);
  });
});

describe("the worker's day reminder", () => {
  it("is a job an hour before the first visit; it goes out once, for the earliest visit assigned that day", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    const reminders = () =>
      t.db
        .selectFrom("jobs")
        .select(["payload", "due_at", "status"])
        .where("kind", "=", "visits.day_reminder")
        .orderBy("due_at")
        .execute()
        .then((rows) =>
          rows
            .map((r) => ({ ...JSON.parse(r.payload), dueAt: r.due_at, status: r.status }))
            .filter((r) => r.workerId === v.worker.id),
        );
    const hourBefore = new Date(Date.parse(v.startsAt) - 60 * 60_000).toISOString();
    expect(await reminders()).toEqual([
      {
        workerId: v.worker.id,
        date: expect.any(String),
        firstStartsAt: v.startsAt,
        timeZone: "Asia/Shanghai",
        dueAt: hourBefore,
        status: "pending",
      },
    ]);
    const { date } = (await reminders())[0]!;

    // An earlier visit the same day, at 07:00, for the same worker.
    const early = await book(t, v.daughter.token, v.residentId, v.provider, {
      date,
      time: "07:00",
    });
    await assign(t, v.provider, early.visitId, v.worker.id);
    const planned = await reminders();
    expect(planned.map((r) => [r.firstStartsAt, r.dueAt])).toEqual([
      [early.startsAt, new Date(Date.parse(early.startsAt) - 60 * 60_000).toISOString()],
      [v.startsAt, hourBefore],
    ]);

    const dayMessages = async () =>
      (await deliveriesOf(t, { purpose: "worker_day" })).filter(
        (d) => d.user_id === v.worker.user.id,
      );
    await at(t, early.startsAt, -61);
    expect(await dayMessages()).toEqual([]);
    await at(t, early.startsAt, -60);
    const [sent, ...more] = await dayMessages();
    expect(more).toEqual([]);
    expect(sent).toMatchObject({ channel: "push", status: "sent" });
    expect(JSON.parse(sent!.message)).toMatchObject({
      t: "worker_day",
      visits: 2,
      firstAt: early.startsAt,
    });
    const pushed = pushesTo(v.worker.subscription.endpoint).filter((p) =>
      /Your visits today|今日上门安排/.test(JSON.stringify(p.payload)),
    );
    expect(pushed).toHaveLength(1);

    // The later visit's own reminder finds it is no longer the first: it sends nothing.
    await at(t, v.startsAt, -60);
    expect(await dayMessages()).toHaveLength(1);
    expect((await reminders()).map((r) => r.status)).toEqual(["done", "done"]);
    expect(
      pushesTo(v.worker.subscription.endpoint).filter((p) =>
        /Your visits today|今日上门安排/.test(JSON.stringify(p.payload)),
      ),
    ).toHaveLength(1);
  });
});

describe("any alert reaches the workers and provider of today's visit", () => {
  async function sos(app: TestApp, residentId: string) {
    const raised = await app.db.transaction().execute((trx) =>
      raiseAlert(
        trx,
        {
          residentId,
          kind: "sos",
          severity: "critical",
          sourceType: "device_event",
          sourceId: null,
          openKey: null,
          summary: "SOS button pressed",
        },
        app.clock.now(),
      ),
    );
    await app.scheduler.drain();
    return raised.alert;
  }

  async function chainNaming(v: WatchedVisit) {
    const res = await t.request("PUT", `/v1/residents/${v.residentId}/escalation-policy`, {
      token: v.daughter.token,
      body: {
        tiers: [
          {
            recipients: [{ kind: "visit_workers" }, { kind: "provider_on_call" }],
            channels: ["push", "sms"],
            waitMinutes: 5,
          },
        ],
        repeatEveryMinutes: 5,
        repeatLimit: 0,
      },
    });
    expect(res.status).toBe(200);
  }

  it("an SOS on the day of a visit reaches its worker and the provider's on-call phone", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await chainNaming(v);
    // The morning of the visit, before it starts.
    t.clock.set(new Date(Date.parse(v.startsAt) - 90 * 60_000));
    const alert = await sos(t, v.residentId);
    const sent = await deliveriesOf(t, { alertId: alert.id });
    expect(
      sent.map((d) => [d.user_id === v.worker.user.id ? "worker" : d.phone, d.channel, d.status]),
    ).toEqual(
      expect.arrayContaining([
        ["worker", "push", "sent"],
        [ON_CALL_PHONE, "sms", "queued"],
      ]),
    );
    expect(sent).toHaveLength(2);
    expect(textBySid(sent.find((d) => d.phone === ON_CALL_PHONE)!.provider_ref)?.body).toContain(
      alert.code!,
    );
    const notifying = (await timelineOf(t, alert.id)).find((e) => e.type === "notifying");
    expect(namesIn(notifying?.details)).toEqual(["User worker", "Zhang Min"]);
    expect(notifying?.details?.notes).toBeUndefined();
  });

  it("with no visit that day (or only a cancelled one), the timeline says no worker and no provider has a visit today", async () => {
    const v = await watchedVisit(t, outside, operator.token);
    await chainNaming(v);
    // The day before the visit.
    t.clock.set(new Date(Date.parse(v.startsAt) - 24 * 3_600_000));
    const before = await sos(t, v.residentId);
    const notesOf = async (alertId: string) =>
      (await timelineOf(t, alertId)).find((e) => e.type === "notifying")?.details;
    expect(await notesOf(before.id)).toMatchObject({
      recipients: [],
      notes: ["no worker has a visit today", "no provider has a visit today"],
    });
    expect(await deliveriesOf(t, { alertId: before.id })).toEqual([]);

    // On the day, once the visit is cancelled, it no longer counts.
    const cancelled = await t.request("POST", `/v1/bookings/${v.bookingId}/cancel`, {
      token: v.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: { visitId: v.visitId, reason: "Not needed" },
    });
    expect(cancelled.status).toBe(200);
    t.clock.set(new Date(Date.parse(v.startsAt) - 60 * 60_000));
    const onTheDay = await sos(t, v.residentId);
    expect(await notesOf(onTheDay.id)).toMatchObject({
      recipients: [],
      notes: ["no worker has a visit today", "no provider has a visit today"],
    });
  });
});
