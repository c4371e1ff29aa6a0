// The shared family wallet and the ledger under it: top-ups by two relatives (offline and
// through the gateway's signed webhook), idempotent retries, withdrawals, who may do what, and
// the ledger's invariants (every transaction and the whole sum to zero, no wallet below zero),
// including two debits racing for one wallet.
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accounts, balanceOf, ledgerInvariants, post } from "../src/ledger/ledger";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

const SECRET = "gateway-webhook-secret-for-tests";
let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp({ env: { PAYMENTS_WEBHOOK_SECRET: SECRET } });
  operator = await createOperator(t);
});
afterAll(() => t.close());

let keys = 0;
const key = () => `key-${process.pid}-${++keys}-${Date.now()}`;

async function family() {
  const daughter = await signUpFamily(t, { displayName: "Li Na" });
  const son = await signUpFamily(t, { displayName: "Li Lei" });
  const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
  await joinCircle(t, daughter.token, residentId, son);
  return { daughter, son, residentId };
}

const topUp = (residentId: string, payerUserId: string, amount: number, idem = key()) =>
  t.request("POST", `/v1/residents/${residentId}/wallet/top-ups`, {
    token: operator.token,
    headers: { "idempotency-key": idem },
    body: { payerUserId, amount, method: "bank_transfer", reference: "ICBC 2026-11-22" },
  });

function signed(body: string, at = t.clock.now()) {
  const ts = Math.floor(at.getTime() / 1000);
  const v1 = createHmac("sha256", SECRET).update(`${ts}.${body}`).digest("hex");
  return `t=${ts},v1=${v1}`;
}

async function webhook(event: unknown, signature?: string) {
  const body = JSON.stringify(event);
  const res = await t.app.request("/v1/webhooks/payments", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-kincare-signature": signature ?? signed(body),
    },
    body,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function expectLedgerSound() {
  const inv = await ledgerInvariants(t.db);
  expect(inv).toEqual({ total: 0, unbalancedTransactions: [], negativeAccounts: [] });
}

describe("topping up", () => {
  it("two relatives in different cities fill one wallet, and the statement shows who paid", async () => {
    const f = await family();
    const offline = await topUp(f.residentId, f.daughter.id, 50_000);
    expect(offline.status).toBe(201);
    expect(offline.body).toMatchObject({ status: "completed", amount: 50_000, currency: "CNY" });

    const intent = await t.request("POST", `/v1/residents/${f.residentId}/wallet/payment-intents`, {
      token: f.son.token,
      headers: { "idempotency-key": key() },
      body: { amount: 30_000 },
    });
    expect(intent.body).toMatchObject({ status: "pending", payerUserId: f.son.id });
    const event = {
      id: `evt_${key()}`,
      type: "payment.succeeded",
      data: { paymentId: intent.body.id, amount: 30_000, currency: "CNY" },
    };
    expect((await webhook(event)).body).toEqual({ received: true, duplicate: false });
    // The gateway delivers its events at least once.
    expect((await webhook(event)).body).toEqual({ received: true, duplicate: true });

    const wallet = await t.request("GET", `/v1/residents/${f.residentId}/wallet`, {
      token: f.son.token,
    });
    expect(wallet.body.balance).toBe(80_000);
    expect(wallet.body.contributors).toEqual(
      expect.arrayContaining([
        { userId: f.daughter.id, displayName: "Li Na", toppedUp: 50_000, withdrawn: 0 },
        { userId: f.son.id, displayName: "Li Lei", toppedUp: 30_000, withdrawn: 0 },
      ]),
    );
    const statement = await t.request("GET", `/v1/residents/${f.residentId}/wallet/statement`, {
      token: f.daughter.token,
    });
    expect(
      statement.body.items.map((i: { description: string; amount: number }) => [
        i.description,
        i.amount,
      ]),
    ).toEqual([
      ["Top-up by Li Lei (gateway)", 30_000],
      ["Top-up by Li Na (bank transfer)", 50_000],
    ]);
    await expectLedgerSound();
  });

  it("a forged, stale or mismatched gateway event changes nothing", async () => {
    const f = await family();
    const intent = await t.request("POST", `/v1/residents/${f.residentId}/wallet/payment-intents`, {
      token: f.daughter.token,
      headers: { "idempotency-key": key() },
      body: { amount: 10_000 },
    });
    const event = {
      id: `evt_${key()}`,
      type: "payment.succeeded",
      data: { paymentId: intent.body.id, amount: 10_000, currency: "CNY" },
    };
    const forged = await webhook(event, "t=1,v1=00");
    expect(forged).toMatchObject({ status: 403, body: { error: { code: "signature_invalid" } } });
    const stale = await webhook(
      event,
      signed(JSON.stringify(event), new Date(t.clock.now().getTime() - 3_600_000)),
    );
    expect(stale.status).toBe(403);
    const wrongAmount = await webhook({ ...event, data: { ...event.data, amount: 99_999 } });
    expect(wrongAmount.body.error.code).toBe("validation_failed");
    const wallet = await t.request("GET", `/v1/residents/${f.residentId}/wallet`, {
      token: f.daughter.token,
    });
    expect(wallet.body.balance).toBe(0);
  });
});

describe("idempotency", () => {
  it("a retried request moves money once; the same key for another request is refused; no key, no money", async () => {
    const f = await family();
    const idem = key();
    const first = await topUp(f.residentId, f.daughter.id, 12_345, idem);
    const again = await topUp(f.residentId, f.daughter.id, 12_345, idem);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    const other = await topUp(f.residentId, f.daughter.id, 99, idem);
    expect(other).toMatchObject({
      status: 422,
      body: { error: { code: "idempotency_key_reused" } },
    });
    const none = await t.request("POST", `/v1/residents/${f.residentId}/wallet/top-ups`, {
      token: operator.token,
      body: { payerUserId: f.daughter.id, amount: 100, method: "cash" },
    });
    expect(none).toMatchObject({
      status: 428,
      body: { error: { code: "idempotency_key_required" } },
    });
    expect(await balanceOf(t.db, accounts.wallet(f.residentId).id)).toBe(12_345);
  });

  it("a request that failed moved nothing, and its key may be used again once it can succeed", async () => {
    const f = await family();
    const idem = key();
    const stranger = await signUpFamily(t);
    const refused = await topUp(f.residentId, stranger.id, 500, idem);
    expect(refused.body.error.code).toBe("validation_failed");
    await joinCircle(t, f.daughter.token, f.residentId, stranger, "member", "niece");
    const ok = await topUp(f.residentId, stranger.id, 500, idem);
    expect(ok.status).toBe(201);
  });
});

describe("withdrawals", () => {
  it("a contributor takes back at most what they put in; an operator pays it out or returns it", async () => {
    const f = await family();
    await topUp(f.residentId, f.daughter.id, 40_000);
    await topUp(f.residentId, f.son.id, 10_000);
    const withdraw = (who: SignedIn, amount: number) =>
      t.request("POST", `/v1/residents/${f.residentId}/wallet/withdrawals`, {
        token: who.token,
        headers: { "idempotency-key": key() },
        body: { amount },
      });
    const tooMuch = await withdraw(f.son, 10_001);
    expect(tooMuch).toMatchObject({ status: 409, body: { error: { code: "insufficient_funds" } } });
    const held = await withdraw(f.son, 6_000);
    expect(held.body).toMatchObject({ status: "requested", amount: 6_000 });
    expect(await balanceOf(t.db, accounts.wallet(f.residentId).id)).toBe(44_000);
    const second = await withdraw(f.son, 5_000);
    expect(second.body.error.code).toBe("insufficient_funds");

    const decide = (id: string, body: unknown, token = operator.token) =>
      t.request("POST", `/v1/withdrawals/${id}/decision`, {
        token,
        headers: { "idempotency-key": key() },
        body,
      });
    expect((await decide(held.body.id, { action: "pay" }, f.daughter.token)).status).toBe(403);
    expect((await decide(held.body.id, { action: "reject" })).body.error.code).toBe(
      "validation_failed",
    );
    const paid = await decide(held.body.id, { action: "pay" });
    expect(paid.body.status).toBe("paid");
    expect((await decide(held.body.id, { action: "pay" })).body.error.code).toBe("invalid_state");

    const back = await withdraw(f.daughter, 1_000);
    const returned = await decide(back.body.id, { action: "reject", reason: "asked by mistake" });
    expect(returned.body).toMatchObject({ status: "rejected", reason: "asked by mistake" });
    expect(await balanceOf(t.db, accounts.wallet(f.residentId).id)).toBe(44_000);
    const listed = await t.request("GET", `/v1/withdrawals?residentId=${f.residentId}`, {
      token: f.son.token,
    });
    expect(listed.body.items).toHaveLength(2);
    await expectLedgerSound();
  });
});

describe("who may touch the wallet", () => {
  it("only the circle and operators see it; only operators record offline money", async () => {
    const f = await family();
    const stranger = await signUpFamily(t);
    const hidden = await t.request("GET", `/v1/residents/${f.residentId}/wallet`, {
      token: stranger.token,
    });
    expect(hidden.status).toBe(404);
    const selfRecorded = await t.request("POST", `/v1/residents/${f.residentId}/wallet/top-ups`, {
      token: f.daughter.token,
      headers: { "idempotency-key": key() },
      body: { payerUserId: f.daughter.id, amount: 100, method: "cash" },
    });
    expect(selfRecorded.status).toBe(403);
    const intent = await t.request("POST", `/v1/residents/${f.residentId}/wallet/payment-intents`, {
      token: stranger.token,
      headers: { "idempotency-key": key() },
      body: { amount: 100 },
    });
    expect(intent.status).toBe(404);
    const all = await t.request("GET", "/v1/withdrawals", { token: f.daughter.token });
    expect(all.status).toBe(403);
  });
});

describe("the ledger", () => {
  it("of two debits racing for one wallet that together exceed it, exactly one succeeds", async () => {
    const f = await family();
    await topUp(f.residentId, f.daughter.id, 10_000);
    const debit = () =>
      t.db.transaction().execute((trx) =>
        post(
          trx,
          {
            kind: "test_debit",
            description: "race",
            currency: "CNY",
            entries: [
              { account: accounts.wallet(f.residentId), amount: -7_000 },
              { account: accounts.revenue(), amount: 7_000 },
            ],
          },
          t.clock.now(),
        ),
      );
    const results = await Promise.allSettled([debit(), debit(), debit()]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const reasons = results.flatMap((r) =>
      r.status === "rejected" ? [(r.reason as { code?: string }).code] : [],
    );
    expect(reasons).toEqual(["insufficient_funds", "insufficient_funds"]);
    expect(await balanceOf(t.db, accounts.wallet(f.residentId).id)).toBe(3_000);
    await expectLedgerSound();
  });

  it("refuses an unbalanced transaction outright", async () => {
    await expect(
      t.db.transaction().execute((trx) =>
        post(
          trx,
          {
            kind: "broken",
            description: "x",
            currency: "CNY",
            entries: [
              { account: accounts.revenue(), amount: 5 },
              { account: accounts.outside(), amount: -4 },
            ],
          },
          t.clock.now(),
        ),
      ),
    ).rejects.toThrow(/unbalanced/);
  });
});
