// A property of the money: whatever sequence of top-ups, bookings, cancels, verifications,
// confirmations, disputes and their decisions, payouts and withdrawals happens (failures
// included), every ledger transaction sums to zero, so does the whole ledger, and no wallet,
// escrow, payable or hold is below zero.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { markVisitVerified } from "../src/bookings/bookings.service";
import type { VisitStatus } from "../src/bookings/bookings.table";
import { ledgerInvariants } from "../src/ledger/ledger";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { fund, idemKey, verifiedProvider } from "./helpers/marketplace";
import { createResident } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;
beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

const op = fc.oneof(
  fc.record({ kind: fc.constant("topUp" as const), amount: fc.integer({ min: 1, max: 30_000 }) }),
  fc.record({ kind: fc.constant("book" as const), day: fc.integer({ min: 2, max: 9 }) }),
  fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("verify" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("confirm" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("dispute" as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant("decide" as const),
    pick: fc.nat(),
    outcome: fc.constantFrom("release", "refund", "split"),
    refund: fc.integer({ min: 0, max: 12_000 }),
  }),
  fc.record({ kind: fc.constant("payout" as const), amount: fc.integer({ min: 1, max: 20_000 }) }),
  fc.record({
    kind: fc.constant("withdraw" as const),
    amount: fc.integer({ min: 1, max: 20_000 }),
  }),
  fc.record({ kind: fc.constant("wait" as const), hours: fc.integer({ min: 1, max: 60 }) }),
);

describe("the ledger under random operations", () => {
  it("always sums to zero with no wallet, escrow, payable or hold below zero", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (ops) => {
        const daughter = await signUpFamily(t);
        const residentId = (await createResident(t, daughter.token, { relationship: "daughter" }))
          .id;
        const p = await verifiedProvider(t, operator.token, {
          priceMinor: 12_000,
          minNoticeHours: 1,
        });
        const visits = async (status: VisitStatus) =>
          (
            await t.db
              .selectFrom("visits")
              .select("id")
              .where("resident_id", "=", residentId)
              .where("status", "=", status)
              .execute()
          ).map((v) => v.id);
        const pick = async (status: VisitStatus, n: number) => {
          const ids = await visits(status);
          return ids.length ? ids[n % ids.length] : undefined;
        };
        const call = (method: string, path: string, body: unknown, token = daughter.token) =>
          t.request(method, path, { token, headers: { "idempotency-key": idemKey() }, body });
        for (const o of ops) {
          if (o.kind === "topUp") await fund(t, operator.token, residentId, daughter.id, o.amount);
          else if (o.kind === "book") {
            const date = new Date(t.clock.now().getTime() + o.day * 86_400_000)
              .toISOString()
              .slice(0, 10);
            await call("POST", "/v1/bookings", {
              residentId,
              serviceId: p.serviceId,
              schedule: { type: "once", date, time: "10:00" },
            });
          } else if (o.kind === "cancel") {
            const id = await pick("scheduled", o.pick);
            const v =
              id &&
              (await t.db
                .selectFrom("visits")
                .select("booking_id")
                .where("id", "=", id)
                .executeTakeFirst());
            if (v)
              await call("POST", `/v1/bookings/${v.booking_id}/cancel`, {
                visitId: id,
                reason: "plans changed",
              });
          } else if (o.kind === "verify") {
            const id = await pick("scheduled", o.pick);
            if (id)
              await t.db.transaction().execute((trx) => markVisitVerified(trx, id, t.clock.now()));
          } else if (o.kind === "confirm" || o.kind === "dispute") {
            const id = await pick("verified", o.pick);
            if (id) {
              await call(
                "POST",
                `/v1/visits/${id}/review`,
                o.kind === "confirm" ? { confirm: true } : { dispute: "not done" },
              );
            }
          } else if (o.kind === "decide") {
            const id = await pick("disputed", o.pick);
            if (id) {
              await call(
                "POST",
                `/v1/visits/${id}/dispute-decision`,
                {
                  outcome: o.outcome,
                  note: "decided",
                  ...(o.outcome === "split" ? { refund: o.refund } : {}),
                },
                operator.token,
              );
            }
          } else if (o.kind === "payout") {
            await call(
              "POST",
              `/v1/providers/${p.id}/payouts`,
              { amount: o.amount, reference: "batch" },
              operator.token,
            );
          } else if (o.kind === "withdraw") {
            await call("POST", `/v1/residents/${residentId}/wallet/withdrawals`, {
              amount: o.amount,
            });
          } else {
            t.clock.advance(o.hours * 3_600_000);
            await t.scheduler.drain();
          }
        }
        const inv = await ledgerInvariants(t.db);
        expect(inv).toEqual({ total: 0, unbalancedTransactions: [], negativeAccounts: [] });
      }),
      { numRuns: 12 },
    );
  }, 240_000);
});
