// Bookings and the money behind them, every balance checked: the full journey (two relatives
// top up, book, the provider accepts, the visit is verified, the family confirms, the provider is
// paid and paid out), cancelling early and late, provider silence, disputes decided each way,
// a weekly series across a daylight-saving change, idempotent retries, two bookings racing for one
// wallet, and who may do what.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { markVisitVerified, rollSeries } from "../src/bookings/bookings.service";
import { accounts, balanceOf, ledgerInvariants } from "../src/ledger/ledger";
import { FakeClock } from "./helpers/clock";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { fund, idemKey, type Provider, verifiedProvider } from "./helpers/marketplace";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

async function family(app = t, op = operator, opts: Record<string, unknown> = {}) {
  const daughter = await signUpFamily(app, { displayName: "Li Na" });
  const son = await signUpFamily(app, { displayName: "Li Lei" });
  const residentId = (
    await createResident(app, daughter.token, { relationship: "daughter", ...opts })
  ).id;
  await joinCircle(app, daughter.token, residentId, son);
  void op;
  return { daughter, son, residentId };
}

const balance = (app: TestApp, id: string) => balanceOf(app.db, id);

function book(app: TestApp, token: string, body: Record<string, unknown>, key = idemKey()) {
  return app.request("POST", "/v1/bookings", { token, headers: { "idempotency-key": key }, body });
}

/** A local date `days` from the fake clock's today in Shanghai. */
const day = (app: TestApp, days: number) =>
  new Date(app.clock.now().getTime() + days * 86_400_000).toISOString().slice(0, 10);

async function expectSound(app = t) {
  expect(await ledgerInvariants(app.db)).toEqual({
    total: 0,
    unbalancedTransactions: [],
    negativeAccounts: [],
  });
}

async function answer(app: TestApp, p: Provider, bookingId: string, body: Record<string, unknown>) {
  return app.request("POST", `/v1/bookings/${bookingId}/answer`, {
    token: p.admin.token,
    headers: { "idempotency-key": idemKey() },
    body,
  });
}

describe("the full journey", () => {
  it("top-ups by two relatives, a booking, acceptance, verification, confirmation, release and payout", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    await fund(t, operator.token, f.residentId, f.daughter.id, 30_000);
    await fund(t, operator.token, f.residentId, f.son.id, 20_000);

    const booked = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 2), time: "09:00" },
      notes: "Ring twice, she is hard of hearing",
    });
    expect(booked.status).toBe(201);
    expect(booked.body).toMatchObject({ status: "pending", visitPrice: 12_000 });
    const visitId = booked.body.visits[0].id;
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(38_000);
    expect(await balance(t, accounts.escrow(visitId).id)).toBe(12_000);

    const accepted = await answer(t, p, booked.body.id, { accept: true });
    expect(accepted.body.status).toBe("accepted");

    await t.db.transaction().execute((trx) => markVisitVerified(trx, visitId, t.clock.now()));
    const confirmed = await t.request("POST", `/v1/visits/${visitId}/review`, {
      token: f.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: { confirm: true },
    });
    expect(confirmed.body.status).toBe("released");
    expect(await balance(t, accounts.escrow(visitId).id)).toBe(0);
    expect(await balance(t, accounts.payable(p.id).id)).toBe(10_800);

    const payout = await t.request("POST", `/v1/providers/${p.id}/payouts`, {
      token: operator.token,
      headers: { "idempotency-key": idemKey() },
      body: { amount: 10_800, reference: "bank batch 2026-11-25" },
    });
    expect(payout.status).toBe(201);
    expect(await balance(t, accounts.payable(p.id).id)).toBe(0);
    const tooMuch = await t.request("POST", `/v1/providers/${p.id}/payouts`, {
      token: operator.token,
      headers: { "idempotency-key": idemKey() },
      body: { amount: 1, reference: "x" },
    });
    expect(tooMuch.body.error.code).toBe("insufficient_funds");

    const statement = await t.request("GET", `/v1/residents/${f.residentId}/wallet/statement`, {
      token: f.son.token,
    });
    expect(statement.body.items.map((i: { kind: string }) => i.kind)).toEqual([
      "visit_escrow",
      "top_up",
      "top_up",
    ]);
    await expectSound();
  });
});

describe("cancelling", () => {
  it("in time refunds in full; late costs the fee, paid to the provider less commission", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    await fund(t, operator.token, f.residentId, f.daughter.id, 24_000);
    const early = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 3), time: "10:00" },
    });
    const late = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 1), time: "18:00" },
    });
    expect(late.status).toBe(201);
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(0);
    const cancel = (bookingId: string, visitId?: string) =>
      t.request("POST", `/v1/bookings/${bookingId}/cancel`, {
        token: f.daughter.token,
        headers: { "idempotency-key": idemKey() },
        body: { reason: "she is visiting her sister", ...(visitId ? { visitId } : {}) },
      });
    const e = await cancel(early.body.id, early.body.visits[0].id);
    expect(e.body.cancelled[0]).toMatchObject({ refunded: 12_000, fee: 0 });
    t.clock.advance(12 * 3_600_000); // now less than 24 h before the late visit
    const l = await cancel(late.body.id);
    expect(l.body.cancelled[0]).toMatchObject({ refunded: 6_000, fee: 6_000 });
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(18_000);
    expect(await balance(t, accounts.payable(p.id).id)).toBe(5_400);
    const again = await cancel(early.body.id, early.body.visits[0].id);
    expect(again.body.error.code).toBe("invalid_state");
    await expectSound();
  });

  it("a provider's cancel or no-show refunds in full and marks the provider", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    await fund(t, operator.token, f.residentId, f.daughter.id, 12_000);
    const b = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 2), time: "09:00" },
    });
    const visitId = b.body.visits[0].id;
    const byFamily = await t.request("POST", `/v1/visits/${visitId}/provider-failure`, {
      token: f.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: { kind: "no_show", reason: "nobody came" },
    });
    expect(byFamily.status).toBe(403);
    const noShow = await t.request("POST", `/v1/visits/${visitId}/provider-failure`, {
      token: operator.token,
      headers: { "idempotency-key": idemKey() },
      body: { kind: "no_show", reason: "nobody came" },
    });
    expect(noShow.body.status).toBe("refunded");
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(12_000);
    const provider = await t.db
      .selectFrom("providers")
      .select("no_show_count")
      .where("id", "=", p.id)
      .executeTakeFirstOrThrow();
    expect(provider.no_show_count).toBe(1);
  });
});

describe("the provider's answer", () => {
  it("silence past the deadline declines the booking and refunds every visit (a durable job)", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    await fund(t, operator.token, f.residentId, f.daughter.id, 20_000);
    const b = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 3), time: "09:00" },
    });
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(8_000);
    t.clock.advance(25 * 3_600_000);
    await t.scheduler.drain();
    const after = await t.request("GET", `/v1/bookings/${b.body.id}`, { token: f.daughter.token });
    expect(after.body).toMatchObject({
      status: "declined",
      declineReason: "the provider did not answer in time",
    });
    expect(after.body.visits[0].status).toBe("refunded");
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(20_000);
    const tooLate = await answer(t, p, b.body.id, { accept: true });
    expect(tooLate.body.error.code).toBe("invalid_state");
  });

  it("a decline refunds; another provider's admin cannot answer; a stranger sees nothing", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    const other = await verifiedProvider(t, operator.token);
    await fund(t, operator.token, f.residentId, f.daughter.id, 12_000);
    const b = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 2), time: "09:00" },
    });
    const wrong = await answer(t, other, b.body.id, { accept: true });
    expect(wrong.status).toBe(404);
    const seen = await t.request("GET", `/v1/bookings?providerId=${p.id}`, {
      token: other.admin.token,
    });
    expect(seen.status).toBe(404);
    const stranger = await signUpFamily(t);
    expect(
      (await t.request("GET", `/v1/bookings/${b.body.id}`, { token: stranger.token })).status,
    ).toBe(404);
    const noReason = await answer(t, p, b.body.id, { accept: false });
    expect(noReason.body.error.code).toBe("validation_failed");
    const declined = await answer(t, p, b.body.id, {
      accept: false,
      reason: "no carer free that morning",
    });
    expect(declined.body.status).toBe("declined");
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(12_000);
    const mine = await t.request("GET", `/v1/bookings?providerId=${p.id}`, {
      token: p.admin.token,
    });
    expect(mine.body.items.map((x: { id: string }) => x.id)).toContain(b.body.id);
  });
});

describe("disputes", () => {
  it("freeze the money until an operator releases, refunds or splits it", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token, { priceMinor: 10_000 });
    await fund(t, operator.token, f.residentId, f.daughter.id, 30_000);
    const ids: string[] = [];
    for (const d of [2, 3, 4]) {
      const b = await book(t, f.daughter.token, {
        residentId: f.residentId,
        serviceId: p.serviceId,
        schedule: { type: "once", date: day(t, d), time: "09:00" },
      });
      ids.push(b.body.visits[0].id);
      await t.db
        .transaction()
        .execute((trx) => markVisitVerified(trx, b.body.visits[0].id, t.clock.now()));
      const disputed = await t.request("POST", `/v1/visits/${b.body.visits[0].id}/review`, {
        token: f.daughter.token,
        headers: { "idempotency-key": idemKey() },
        body: { dispute: "the carer left after twenty minutes" },
      });
      expect(disputed.body.status).toBe("disputed");
    }
    // The review window's end does not release disputed money.
    t.clock.advance(49 * 3_600_000);
    await t.scheduler.drain();
    expect(await balance(t, accounts.payable(p.id).id)).toBe(0);
    const decide = (visitId: string, body: Record<string, unknown>) =>
      t.request("POST", `/v1/visits/${visitId}/dispute-decision`, {
        token: operator.token,
        headers: { "idempotency-key": idemKey() },
        body,
      });
    expect(
      (await decide(ids[0]!, { outcome: "release", note: "the log shows a full visit" })).body
        .status,
    ).toBe("released");
    expect((await decide(ids[1]!, { outcome: "refund", note: "no check-in" })).body.status).toBe(
      "refunded",
    );
    expect(
      (await decide(ids[2]!, { outcome: "split", note: "half the tasks" })).body.error.code,
    ).toBe("validation_failed");
    expect(
      (await decide(ids[2]!, { outcome: "split", refund: 4_000, note: "half the tasks" })).body
        .status,
    ).toBe("released");
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(14_000);
    expect(await balance(t, accounts.payable(p.id).id)).toBe(9_000 + 5_400);
    await expectSound();
  });

  it("an undisputed visit is released when the review window ends", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token, { priceMinor: 10_000 });
    await fund(t, operator.token, f.residentId, f.daughter.id, 10_000);
    const b = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 2), time: "09:00" },
    });
    await t.db
      .transaction()
      .execute((trx) => markVisitVerified(trx, b.body.visits[0].id, t.clock.now()));
    t.clock.advance(47 * 3_600_000);
    await t.scheduler.drain();
    expect(await balance(t, accounts.payable(p.id).id)).toBe(0);
    t.clock.advance(2 * 3_600_000);
    await t.scheduler.drain();
    expect(await balance(t, accounts.payable(p.id).id)).toBe(9_000);
    expect(await balance(t, accounts.revenue().id)).toBeGreaterThanOrEqual(1_000);
  });
});

describe("retries and races", () => {
  it("a retried booking books once; two bookings racing for one wallet: exactly one succeeds", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    await fund(t, operator.token, f.residentId, f.daughter.id, 15_000);
    const body = {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 2), time: "09:00" },
    };
    const key = idemKey();
    const [one, two] = await Promise.all([
      book(t, f.daughter.token, body, key),
      book(t, f.daughter.token, body, key),
    ]);
    const ok = [one, two].filter((r) => r.status === 201);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((r) => r.body.id)).size).toBe(1);
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(3_000);

    await fund(t, operator.token, f.residentId, f.daughter.id, 12_000); // 15,000: room for one more
    const racing = await Promise.all([
      book(t, f.daughter.token, {
        ...body,
        schedule: { type: "once", date: day(t, 3), time: "09:00" },
      }),
      book(t, f.son.token, { ...body, schedule: { type: "once", date: day(t, 4), time: "09:00" } }),
      book(t, f.daughter.token, {
        ...body,
        schedule: { type: "once", date: day(t, 5), time: "09:00" },
      }),
    ]);
    // The son is a member, not a primary: he may not book at all.
    expect(racing[1]!.status).toBe(403);
    const statuses = [racing[0]!.status, racing[2]!.status].sort();
    expect(statuses).toEqual([201, 409]);
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(3_000);
    await expectSound();
  });

  it("too little money is a clear error that moves nothing", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    await fund(t, operator.token, f.residentId, f.daughter.id, 5_000);
    const res = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 2), time: "09:00" },
    });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: "insufficient_funds" });
    expect(res.body.error.message).toContain("CNY 50.00");
    expect(
      await t.db
        .selectFrom("bookings")
        .select("id")
        .where("resident_id", "=", f.residentId)
        .execute(),
    ).toHaveLength(0);
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(5_000);
  });
});

describe("a weekly series", () => {
  it("keeps 09:00 local across the spring daylight-saving change, rolls forward, and tells the family when the wallet runs short", async () => {
    // London, a week before clocks go forward (2027-03-28).
    const app = await createTestApp({ clock: new FakeClock("2027-03-19T09:00:00.000Z") });
    try {
      const op = await createOperator(app);
      const f = await family(app, op, { timeZone: "Europe/London", language: "en" });
      const p = await verifiedProvider(app, op.token, { priceMinor: 10_000 });
      await fund(app, op.token, f.residentId, f.daughter.id, 30_000);
      const b = await book(app, f.daughter.token, {
        residentId: f.residentId,
        serviceId: p.serviceId,
        schedule: {
          type: "weekly",
          days: ["sun"],
          time: "09:00",
          startDate: "2027-03-21",
          weeks: 4,
        },
      });
      expect(b.status).toBe(201);
      // Two weeks ahead: 21 March (GMT) and 28 March (BST).
      expect(b.body.visits.map((v: { startsAt: string }) => v.startsAt)).toEqual([
        "2027-03-21T09:00:00.000Z",
        "2027-03-28T08:00:00.000Z",
      ]);
      expect(await balanceOf(app.db, accounts.wallet(f.residentId).id)).toBe(10_000);

      // A week later the series rolls forward by one visit; the one after cannot be paid for.
      app.clock.set("2027-03-26T09:00:00.000Z");
      const short: string[] = [];
      await rollSeries(app.db, app.clock.now(), async (booking) => {
        short.push(booking.id);
      });
      const visits = await app.db
        .selectFrom("visits")
        .select(["starts_at", "local_time"])
        .where("booking_id", "=", b.body.id)
        .orderBy("starts_at")
        .execute();
      expect(visits.map((v) => v.starts_at)).toEqual([
        "2027-03-21T09:00:00.000Z",
        "2027-03-28T08:00:00.000Z",
        "2027-04-04T08:00:00.000Z",
      ]);
      expect(visits.every((v) => v.local_time === "09:00")).toBe(true);
      app.clock.set("2027-04-02T09:00:00.000Z");
      await rollSeries(app.db, app.clock.now(), async (booking) => {
        short.push(booking.id);
      });
      expect(short).toEqual([b.body.id]);
      expect(await balanceOf(app.db, accounts.wallet(f.residentId).id)).toBe(0);
      await expectSound(app);
    } finally {
      await app.close();
    }
  });
});

describe("settlement and time away", () => {
  it("the provider's settlement shows each released visit with its commission, the fees and the payouts, as JSON and CSV", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token, { priceMinor: 20_000 });
    await fund(t, operator.token, f.residentId, f.daughter.id, 40_000);
    const first = await book(t, f.daughter.token, {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 2), time: "09:00" },
    });
    await t.db
      .transaction()
      .execute((trx) => markVisitVerified(trx, first.body.visits[0].id, t.clock.now()));
    await t.request("POST", `/v1/visits/${first.body.visits[0].id}/review`, {
      token: f.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: { confirm: true },
    });
    await t.request("POST", `/v1/providers/${p.id}/payouts`, {
      token: operator.token,
      headers: { "idempotency-key": idemKey() },
      body: { amount: 18_000, reference: "batch 7" },
    });
    const from = t.clock.now().toISOString().slice(0, 10);
    const to = day(t, 1);
    const json = await t.request("GET", `/v1/providers/${p.id}/settlement?from=${from}&to=${to}`, {
      token: p.admin.token,
    });
    expect(json.body.totals).toEqual({
      gross: 20_000,
      commission: 2_000,
      earned: 18_000,
      paidOut: 18_000,
    });
    expect(json.body.balanceNow).toBe(0);
    const csv = await t.request(
      "GET",
      `/v1/providers/${p.id}/settlement?from=${from}&to=${to}&format=csv`,
      {
        token: operator.token,
      },
    );
    expect(csv.headers.get("content-type")).toContain("text/csv");
    const lines = String(csv.body).trim().split("\n");
    expect(lines[0]).toBe("date,transaction,kind,visit,description,gross,commission,net");
    expect(lines.some((l) => l.includes("visit_release") && l.endsWith(",20000,2000,18000"))).toBe(
      true,
    );
    expect(lines.at(-1)).toBe("total,,,,paid out 18000,20000,2000,18000");
    const other = await verifiedProvider(t, operator.token);
    const denied = await t.request(
      "GET",
      `/v1/providers/${p.id}/settlement?from=${from}&to=${to}`,
      {
        token: other.admin.token,
      },
    );
    expect(denied.status).toBe(404);
  });

  it("pausing a resident cancels the visits on the days away, with a full refund", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token, { priceMinor: 10_000 });
    await fund(t, operator.token, f.residentId, f.daughter.id, 30_000);
    for (const d of [2, 4, 6]) {
      await book(t, f.daughter.token, {
        residentId: f.residentId,
        serviceId: p.serviceId,
        schedule: { type: "once", date: day(t, d), time: "10:00" },
      });
    }
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(0);
    const paused = await t.request("POST", `/v1/residents/${f.residentId}/status`, {
      token: f.daughter.token,
      body: {
        status: "paused",
        from: day(t, 3),
        until: day(t, 6),
        reason: "staying with her sister",
      },
    });
    expect(paused.status).toBe(200);
    const visits = await t.db
      .selectFrom("visits")
      .select(["local_date", "status"])
      .where("resident_id", "=", f.residentId)
      .orderBy("local_date")
      .execute();
    expect(visits.map((v) => v.status)).toEqual(["scheduled", "cancelled", "scheduled"]);
    expect(await balance(t, accounts.wallet(f.residentId).id)).toBe(10_000);
    await expectSound();
  });
});

describe("who books", () => {
  it("a member may book once a primary allows it, and not before", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    await fund(t, operator.token, f.residentId, f.daughter.id, 20_000);
    const body = {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(t, 2), time: "09:00" },
    };
    expect((await book(t, f.son.token, body)).status).toBe(403);
    const self = await t.request("PATCH", `/v1/residents/${f.residentId}/circle/${f.son.id}`, {
      token: f.son.token,
      body: { canBook: true },
    });
    expect(self.status).toBe(403);
    const allowed = await t.request("PATCH", `/v1/residents/${f.residentId}/circle/${f.son.id}`, {
      token: f.daughter.token,
      body: { canBook: true },
    });
    expect(allowed.body.items.find((m: { userId: string }) => m.userId === f.son.id).canBook).toBe(
      true,
    );
    expect((await book(t, f.son.token, body)).status).toBe(201);
  });
});
