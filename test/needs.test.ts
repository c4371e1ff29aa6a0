// Needs and offers: a primary posts what the catalog lacks, providers serving the area offer,
// the family takes one (an accepted booking, its price in escrow, the other offers declined),
// and a need nobody took expires by itself.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accounts, balanceOf } from "../src/ledger/ledger";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { fund, idemKey, verifiedProvider } from "./helpers/marketplace";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;
beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

const inDays = (d: number) => new Date(t.clock.now().getTime() + d * 86_400_000);

async function postNeed(
  token: string,
  residentId: string,
  overrides: Record<string, unknown> = {},
) {
  return t.request("POST", `/v1/residents/${residentId}/needs`, {
    token,
    body: {
      category: "personal_care",
      description: "Someone to accompany Mum to the eye clinic and back",
      date: inDays(3).toISOString().slice(0, 10),
      time: "08:30",
      budget: 20_000,
      expiresAt: inDays(2).toISOString(),
      ...overrides,
    },
  });
}

describe("needs and offers", () => {
  it("a need gets offers from providers serving the area; accepting one books it and declines the rest", async () => {
    const daughter = await signUpFamily(t);
    const son = await signUpFamily(t);
    const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
    await joinCircle(t, daughter.token, residentId, son);
    await fund(t, operator.token, residentId, daughter.id, 50_000);
    const a = await verifiedProvider(t, operator.token);
    const b = await verifiedProvider(t, operator.token);
    const faraway = await verifiedProvider(t, operator.token);
    await t.db.deleteFrom("provider_localities").where("provider_id", "=", faraway.id).execute();

    expect((await postNeed(son.token, residentId)).status).toBe(403);
    const need = await postNeed(daughter.token, residentId);
    expect(need.status).toBe(201);

    const seen = await t.request("GET", `/v1/providers/${a.id}/open-needs`, {
      token: a.admin.token,
    });
    expect(seen.body.items.map((n: { id: string }) => n.id)).toContain(need.body.id);
    const notSeen = await t.request("GET", `/v1/providers/${faraway.id}/open-needs`, {
      token: faraway.admin.token,
    });
    expect(notSeen.body.items.map((n: { id: string }) => n.id)).not.toContain(need.body.id);

    const offer = (p: typeof a, price: number) =>
      t.request("POST", `/v1/needs/${need.body.id}/offers`, {
        token: p.admin.token,
        body: {
          providerId: p.id,
          serviceId: p.serviceId,
          price,
          date: inDays(3).toISOString().slice(0, 10),
          time: "08:30",
          message: "Our escort Wang Li knows the clinic well",
        },
      });
    const first = await offer(a, 18_000);
    const second = await offer(b, 15_000);
    expect([first.status, second.status]).toEqual([201, 201]);
    expect((await offer(a, 17_000)).body.error.code).toBe("already_exists");
    expect((await offer(faraway, 10_000)).status).toBe(404);

    const accepted = await t.request(
      "POST",
      `/v1/needs/${need.body.id}/offers/${second.body.id}/accept`,
      {
        token: daughter.token,
        headers: { "idempotency-key": idemKey() },
      },
    );
    expect(accepted.status).toBe(201);
    expect(accepted.body).toMatchObject({
      status: "accepted",
      visitPrice: 15_000,
      providerId: b.id,
    });
    expect(await balanceOf(t.db, accounts.wallet(residentId).id)).toBe(35_000);

    const view = await t.request("GET", `/v1/residents/${residentId}/needs`, { token: son.token });
    const mine = view.body.items.find((n: { id: string }) => n.id === need.body.id);
    expect(mine.status).toBe("accepted");
    expect(
      mine.offers.map((o: { providerId: string; status: string }) => [o.providerId, o.status]),
    ).toEqual([
      [a.id, "declined"],
      [b.id, "accepted"],
    ]);
    const again = await t.request(
      "POST",
      `/v1/needs/${need.body.id}/offers/${first.body.id}/accept`,
      {
        token: daughter.token,
        headers: { "idempotency-key": idemKey() },
      },
    );
    expect(again.body.error.code).toBe("invalid_state");
  });

  it("a need nobody took closes itself at its expiry", async () => {
    const daughter = await signUpFamily(t);
    const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
    const p = await verifiedProvider(t, operator.token);
    const need = await postNeed(daughter.token, residentId);
    await t.request("POST", `/v1/needs/${need.body.id}/offers`, {
      token: p.admin.token,
      body: {
        providerId: p.id,
        serviceId: p.serviceId,
        price: 10_000,
        date: inDays(3).toISOString().slice(0, 10),
        time: "09:00",
        message: "We can do it",
      },
    });
    t.clock.advance(2 * 86_400_000 + 60_000);
    await t.scheduler.drain();
    const view = await t.request("GET", `/v1/residents/${residentId}/needs`, {
      token: daughter.token,
    });
    expect(view.body.items[0]).toMatchObject({ status: "expired" });
    expect(view.body.items[0].offers[0].status).toBe("declined");
    const late = await postNeed(daughter.token, residentId, {
      expiresAt: inDays(-1).toISOString(),
    });
    expect(late.body.error.code).toBe("validation_failed");
  });
});
