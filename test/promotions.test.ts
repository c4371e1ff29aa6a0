// Promotions: a provider's admin proposes a discount on some of its services for a period, an
// operator approves or rejects it; a booking is priced with an approved promotion covering its
// first visit's date (the wallet pays less, the statement says why), never with a proposed,
// rejected or expired one; and who may do what.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rollSeries } from "../src/bookings/bookings.service";
import { newId } from "../src/ids";
import { accounts, balanceOf, ledgerInvariants } from "../src/ledger/ledger";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { fund, idemKey, type Provider, verifiedProvider } from "./helpers/marketplace";
import { createResident } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

const day = (days: number) =>
  new Date(t.clock.now().getTime() + days * 86_400_000).toISOString().slice(0, 10);

async function family(amount = 100_000) {
  const daughter = await signUpFamily(t, { displayName: "Li Na" });
  const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
  await fund(t, operator.token, residentId, daughter.id, amount);
  return { daughter, residentId };
}

function propose(p: Provider, body: Record<string, unknown>, token = p.admin.token) {
  return t.request("POST", `/v1/providers/${p.id}/promotions`, {
    token,
    body: {
      title: "Spring offer",
      serviceIds: [p.serviceId],
      startsOn: day(1),
      endsOn: day(10),
      ...body,
    },
  });
}

function decide(promotionId: string, approve: boolean, token = operator.token) {
  return t.request("POST", `/v1/promotions/${promotionId}/decision`, {
    token,
    body: { approve, reason: approve ? "fair and clear" : "misleading title" },
  });
}

function book(
  f: { daughter: SignedIn; residentId: string },
  p: Provider,
  schedule: Record<string, unknown>,
) {
  return t.request("POST", "/v1/bookings", {
    token: f.daughter.token,
    headers: { "idempotency-key": idemKey() },
    body: { residentId: f.residentId, serviceId: p.serviceId, schedule },
  });
}

const wallet = (residentId: string) => balanceOf(t.db, accounts.wallet(residentId).id);

async function escrowDescriptions(residentId: string) {
  const rows = await t.db
    .selectFrom("ledger_transactions")
    .select("description")
    .where("resident_id", "=", residentId)
    .where("kind", "=", "visit_escrow")
    .orderBy("id")
    .execute();
  return rows.map((r) => r.description);
}

async function expectSound() {
  expect(await ledgerInvariants(t.db)).toEqual({
    total: 0,
    unbalancedTransactions: [],
    negativeAccounts: [],
  });
}

describe("proposing and deciding", () => {
  it("a provider's admin proposes, an operator approves or rejects once, with a reason", async () => {
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    const other = await verifiedProvider(t, operator.token);
    const f = await family();

    const proposed = await propose(p, { percentOff: 20 });
    expect(proposed.status).toBe(201);
    expect(proposed.body).toMatchObject({
      providerId: p.id,
      title: "Spring offer",
      percentOff: 20,
      amountOff: null,
      currency: "CNY",
      serviceIds: [p.serviceId],
      status: "proposed",
    });

    // Only this provider's admins propose, on this provider's services.
    expect((await propose(p, { percentOff: 20 }, other.admin.token)).status).toBe(404);
    expect((await propose(p, { percentOff: 20 }, f.daughter.token)).status).toBe(404);
    expect((await propose(p, { percentOff: 20 }, operator.token)).status).toBe(403);
    const foreign = await propose(p, { percentOff: 20, serviceIds: [other.serviceId] });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.details.issues[0].path).toBe("serviceIds");
    for (const bad of [
      { percentOff: 0 },
      { percentOff: 91 },
      { percentOff: 10, amountOff: 500 },
      {},
      { amountOff: 12_000 },
      { percentOff: 10, startsOn: day(5), endsOn: day(4) },
      { percentOff: 10, startsOn: day(-10), endsOn: day(-3) },
      { percentOff: 10, serviceIds: [] },
    ]) {
      const res = await propose(p, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }

    // The operator's queue, then the decision.
    const queue = await t.request("GET", "/v1/promotions?status=proposed", {
      token: operator.token,
    });
    expect(queue.body.items.map((x: { id: string }) => x.id)).toContain(proposed.body.id);
    expect((await t.request("GET", "/v1/promotions", { token: p.admin.token })).status).toBe(403);
    expect((await decide(proposed.body.id, true, p.admin.token)).status).toBe(403);
    expect((await decide(proposed.body.id, true, f.daughter.token)).status).toBe(403);
    const noReason = await t.request("POST", `/v1/promotions/${proposed.body.id}/decision`, {
      token: operator.token,
      body: { approve: false },
    });
    expect(noReason.status).toBe(400);
    const approved = await decide(proposed.body.id, true);
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: "approved", decisionReason: "fair and clear" });
    expect((await decide(proposed.body.id, false)).status).toBe(409);
    expect((await decide(newId(), true)).status).toBe(404);
    // The provider's admin is told the answer, once (the refused second decision tells no one).
    const told = await t.db
      .selectFrom("deliveries")
      .select(["user_id", "message"])
      .where("purpose", "=", "promotion_decided")
      .execute();
    const toAdmin = told.filter((d) => d.user_id === p.admin.id);
    expect(toAdmin).toHaveLength(1);
    expect(JSON.parse(toAdmin[0]!.message)).toMatchObject({
      t: "promotion_decided",
      approved: true,
      reason: "fair and clear",
    });

    const audit = await t.db
      .selectFrom("audit_log")
      .select(["action", "actor_user_id"])
      .where("entity_id", "=", proposed.body.id)
      .orderBy("id")
      .execute();
    expect(audit).toEqual([
      { action: "promotion.propose", actor_user_id: p.admin.id },
      { action: "promotion.approve", actor_user_id: operator.id },
    ]);

    // Everyone sees the approved ones; the provider's admins and operators see them all.
    const rejected = await propose(p, { amountOff: 1_000, title: "Best in town" });
    expect((await decide(rejected.body.id, false)).body.status).toBe("rejected");
    const pending = await propose(p, { percentOff: 5, title: "Later" });
    const publicList = await t.request("GET", `/v1/providers/${p.id}/promotions`, {
      token: f.daughter.token,
    });
    expect(publicList.body.items.map((x: { id: string }) => x.id)).toEqual([proposed.body.id]);
    const own = await t.request("GET", `/v1/providers/${p.id}/promotions`, {
      token: p.admin.token,
    });
    expect(own.body.items.map((x: { id: string }) => x.id)).toEqual([
      pending.body.id,
      rejected.body.id,
      proposed.body.id,
    ]);
    const rejectedOnly = await t.request(
      "GET",
      `/v1/providers/${p.id}/promotions?status=rejected`,
      { token: operator.token },
    );
    expect(rejectedOnly.body.items).toHaveLength(1);
    expect(rejectedOnly.body.items[0].decisionReason).toBe("misleading title");
  });
});

describe("pricing bookings", () => {
  it("an approved promotion covering the visit's date lowers the price; the statement shows it", async () => {
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    const f = await family(100_000);
    const promo = await propose(p, { percentOff: 20, startsOn: day(1), endsOn: day(10) });

    // Proposed but not approved: full price.
    const before = await book(f, p, { type: "once", date: day(2), time: "09:00" });
    expect(before.status).toBe(201);
    expect(before.body.visitPrice).toBe(12_000);
    expect(before.body).not.toHaveProperty("promotion");
    expect(await wallet(f.residentId)).toBe(88_000);

    await decide(promo.body.id, true);
    const discounted = await book(f, p, { type: "once", date: day(3), time: "09:00" });
    expect(discounted.status).toBe(201);
    expect(discounted.body.visitPrice).toBe(9_600);
    expect(discounted.body.promotion).toEqual({
      id: promo.body.id,
      title: "Spring offer",
      label: "20% off (Spring offer)",
      fullPrice: 12_000,
      discount: 2_400,
    });
    // The booking read back later shows the same promotion (a page shows what was given).
    const readBack = await t.request("GET", `/v1/bookings/${discounted.body.id}`, {
      token: f.daughter.token,
    });
    expect(readBack.body.promotion).toEqual(discounted.body.promotion);
    const plain = await t.request("GET", `/v1/bookings/${before.body.id}`, {
      token: f.daughter.token,
    });
    expect(plain.body).not.toHaveProperty("promotion");
    const visitId = discounted.body.visits[0].id;
    expect(await balanceOf(t.db, accounts.escrow(visitId).id)).toBe(9_600);
    expect(await wallet(f.residentId)).toBe(78_400);

    // Outside the period: full price.
    const after = await book(f, p, { type: "once", date: day(11), time: "09:00" });
    expect(after.body.visitPrice).toBe(12_000);

    const statement = await t.request("GET", `/v1/residents/${f.residentId}/wallet/statement`, {
      token: f.daughter.token,
    });
    expect(
      statement.body.items
        .filter((i: { kind: string }) => i.kind === "visit_escrow")
        .map((i: { description: string; amount: number }) => [i.description, i.amount]),
    ).toEqual([
      [`Visit on ${day(11)} 09:00 held in escrow`, -12_000],
      [`Visit on ${day(3)} 09:00 held in escrow with 20% off (Spring offer)`, -9_600],
      [`Visit on ${day(2)} 09:00 held in escrow`, -12_000],
    ]);
    await expectSound();
  });

  it("a rejected promotion never applies; of two approved ones the larger discount does", async () => {
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    const f = await family();
    const rejected = await propose(p, { percentOff: 50, title: "Half price" });
    await decide(rejected.body.id, false);
    const rejectedBooking = await book(f, p, { type: "once", date: day(2), time: "10:00" });
    expect(rejectedBooking.body.visitPrice).toBe(12_000);

    const amount = await propose(p, { amountOff: 3_000, title: "Welcome" });
    const percent = await propose(p, { percentOff: 20, title: "Spring offer" });
    await decide(amount.body.id, true);
    await decide(percent.body.id, true);
    const best = await book(f, p, { type: "once", date: day(2), time: "11:00" });
    expect(best.body.visitPrice).toBe(9_000);
    expect(best.body.promotion.label).toBe("CNY 30.00 off (Welcome)");
    expect(await escrowDescriptions(f.residentId)).toEqual([
      `Visit on ${day(2)} 10:00 held in escrow`,
      `Visit on ${day(2)} 11:00 held in escrow with CNY 30.00 off (Welcome)`,
    ]);
  });

  it("a booking made from a provider's offer keeps the offered price", async () => {
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    const f = await family();
    const promo = await propose(p, { percentOff: 20 });
    await decide(promo.body.id, true);
    const need = await t.request("POST", `/v1/residents/${f.residentId}/needs`, {
      token: f.daughter.token,
      body: {
        category: "personal_care",
        description: "Someone to help Mum after her operation",
        date: day(3),
        time: "08:30",
        expiresAt: new Date(t.clock.now().getTime() + 2 * 86_400_000).toISOString(),
      },
    });
    expect(need.status).toBe(201);
    const offer = await t.request("POST", `/v1/needs/${need.body.id}/offers`, {
      token: p.admin.token,
      body: {
        providerId: p.id,
        serviceId: p.serviceId,
        price: 11_000,
        date: day(3),
        time: "08:30",
        message: "We can do that",
      },
    });
    expect(offer.status).toBe(201);
    const taken = await t.request(
      "POST",
      `/v1/needs/${need.body.id}/offers/${offer.body.id}/accept`,
      { token: f.daughter.token, headers: { "idempotency-key": idemKey() } },
    );
    expect(taken.status).toBe(201);
    expect(await escrowDescriptions(f.residentId)).toEqual([
      `Visit on ${day(3)} 08:30 held in escrow`,
    ]);
    expect(await wallet(f.residentId)).toBe(100_000 - 11_000);
  });

  it("a weekly series keeps the booking's promotion on every visit it rolls forward", async () => {
    const p = await verifiedProvider(t, operator.token, { priceMinor: 10_000 });
    const f = await family(200_000);
    const promo = await propose(p, { percentOff: 10, startsOn: day(0), endsOn: day(3) });
    await decide(promo.body.id, true);
    const weekday = new Date(`${day(2)}T00:00:00Z`).getUTCDay();
    const series = await book(f, p, {
      type: "weekly",
      days: [["sun", "mon", "tue", "wed", "thu", "fri", "sat"][weekday]],
      time: "09:00",
      startDate: day(2),
      weeks: 4,
    });
    expect(series.status).toBe(201);
    expect(series.body.visitPrice).toBe(9_000);
    const firstVisits = series.body.visits.length;
    expect(firstVisits).toBeGreaterThanOrEqual(2);

    t.clock.advance(14 * 86_400_000);
    await rollSeries(t.db, t.clock.now(), async () => {});
    const descriptions = await escrowDescriptions(f.residentId);
    expect(descriptions.length).toBeGreaterThan(firstVisits);
    for (const d of descriptions)
      expect(d).toMatch(/held in escrow with 10% off \(Spring offer\)$/);
    await expectSound();
  });

  it("an expired promotion no longer applies", async () => {
    const p = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    const f = await family();
    const promo = await propose(p, { percentOff: 30, startsOn: day(1), endsOn: day(4) });
    await decide(promo.body.id, true);
    expect((await book(f, p, { type: "once", date: day(2), time: "09:00" })).body.visitPrice).toBe(
      8_400,
    );

    t.clock.advance(5 * 86_400_000);
    const late = await book(f, p, { type: "once", date: day(2), time: "09:00" });
    expect(late.status).toBe(201);
    expect(late.body.visitPrice).toBe(12_000);
    const publicList = await t.request("GET", `/v1/providers/${p.id}/promotions`, {
      token: f.daughter.token,
    });
    expect(publicList.body.items).toEqual([]);
  });
});
