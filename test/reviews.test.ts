// Ratings and reviews: a visit is rated only once verified (or released), never when cancelled,
// once, by the resident's family; the provider's average follows; its admin replies once; an
// operator hides an abusive review, which leaves the list and the averages but not the table or
// the audit log; and who may do each of these.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { markVisitVerified } from "../src/bookings/bookings.service";
import { newId } from "../src/ids";
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

interface Family {
  daughter: SignedIn;
  son: SignedIn;
  residentId: string;
}

async function family(): Promise<Family> {
  const daughter = await signUpFamily(t, { displayName: "Li Na" });
  const son = await signUpFamily(t, { displayName: "Li Lei" });
  const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
  await joinCircle(t, daughter.token, residentId, son);
  await fund(t, operator.token, residentId, daughter.id, 200_000);
  return { daughter, son, residentId };
}

const day = (days: number) =>
  new Date(t.clock.now().getTime() + days * 86_400_000).toISOString().slice(0, 10);

/** A one-off visit booked and accepted: still scheduled. */
async function scheduledVisit(f: Family, p: Provider, days = 2): Promise<string> {
  const booked = await t.request("POST", "/v1/bookings", {
    token: f.daughter.token,
    headers: { "idempotency-key": idemKey() },
    body: {
      residentId: f.residentId,
      serviceId: p.serviceId,
      schedule: { type: "once", date: day(days), time: "09:00" },
    },
  });
  expect(booked.status).toBe(201);
  const answered = await t.request("POST", `/v1/bookings/${booked.body.id}/answer`, {
    token: p.admin.token,
    headers: { "idempotency-key": idemKey() },
    body: { accept: true },
  });
  expect(answered.status).toBe(200);
  return booked.body.visits[0].id as string;
}

async function verifiedVisit(f: Family, p: Provider, opts: { workerId?: string } = {}) {
  const visitId = await scheduledVisit(f, p);
  if (opts.workerId) {
    await t.db
      .updateTable("visits")
      .set({ worker_id: opts.workerId })
      .where("id", "=", visitId)
      .execute();
  }
  await t.db.transaction().execute((trx) => markVisitVerified(trx, visitId, t.clock.now()));
  return visitId;
}

/** A verified worker of the provider, written straight to the table (workers have their own tests). */
async function worker(p: Provider): Promise<string> {
  const id = newId();
  const now = t.clock.now().toISOString();
  await t.db
    .insertInto("workers")
    .values({
      id,
      provider_id: p.id,
      user_id: null,
      legal_name: "Chen Hua",
      phone: "+8613900000003",
      photo_ref: null,
      id_document_cipher: "x",
      id_document_last4: "1234",
      skills: JSON.stringify(["personal_care"]),
      background_checked_on: null,
      status: "verified",
      status_reason: null,
      status_changed_at: now,
      status_changed_by: null,
      created_by: p.admin.id,
      created_at: now,
      updated_at: now,
    })
    .execute();
  return id;
}

const rate = (token: string, visitId: string, body: Record<string, unknown>) =>
  t.request("POST", `/v1/visits/${visitId}/rating`, { token, body });

const reviewsOf = (token: string, providerId: string, query = "") =>
  t.request("GET", `/v1/providers/${providerId}/reviews${query}`, { token });

async function providerRating(providerId: string) {
  const p = await t.db
    .selectFrom("providers")
    .select(["rating_sum", "rating_count"])
    .where("id", "=", providerId)
    .executeTakeFirstOrThrow();
  return [Number(p.rating_sum), Number(p.rating_count)];
}

describe("rating a visit", () => {
  it("only once it is verified, once per visit, and the provider's average follows", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    const visitId = await scheduledVisit(f, p);

    const early = await rate(f.daughter.token, visitId, { provider: 5 });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe("invalid_state");

    await t.db.transaction().execute((trx) => markVisitVerified(trx, visitId, t.clock.now()));
    // A member of the circle (not only a primary) may rate.
    const rated = await rate(f.son.token, visitId, {
      provider: 4,
      comment: "  On time and kind to Mum  ",
    });
    expect(rated.status).toBe(201);
    expect(rated.body).toMatchObject({
      providerId: p.id,
      serviceId: p.serviceId,
      serviceTitle: "Morning personal care",
      providerRating: 4,
      workerRating: null,
      comment: "On time and kind to Mum",
      reply: null,
    });
    // The public shape names neither the author nor the resident.
    expect(rated.body).not.toHaveProperty("authorId");
    expect(rated.body).not.toHaveProperty("residentId");

    const again = await rate(f.daughter.token, visitId, { provider: 1 });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("already_exists");
    expect(await providerRating(p.id)).toEqual([4, 1]);

    const second = await verifiedVisit(f, p);
    expect((await rate(f.daughter.token, second, { provider: 5 })).status).toBe(201);
    expect(await providerRating(p.id)).toEqual([9, 2]);

    const list = await reviewsOf(f.son.token, p.id);
    expect(list.status).toBe(200);
    expect(list.body.rating).toEqual({ average: 4.5, count: 2 });
    expect(list.body.items.map((r: { providerRating: number }) => r.providerRating)).toEqual([
      5, 4,
    ]);
    // The provider's public profile (and so the catalog) shows the same average.
    const profile = await t.request("GET", `/v1/providers/${p.id}`, { token: f.son.token });
    expect(profile.body.rating).toEqual({ average: 4.5, count: 2 });
  });

  it("a released visit can be rated; a cancelled or refunded one cannot", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);

    const released = await verifiedVisit(f, p);
    const confirm = await t.request("POST", `/v1/visits/${released}/review`, {
      token: f.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: { confirm: true },
    });
    expect(confirm.body.status).toBe("released");
    expect((await rate(f.daughter.token, released, { provider: 3 })).status).toBe(201);

    const cancelled = await scheduledVisit(f, p, 3);
    const booking = await t.db
      .selectFrom("visits")
      .select("booking_id")
      .where("id", "=", cancelled)
      .executeTakeFirstOrThrow();
    const cancel = await t.request("POST", `/v1/bookings/${booking.booking_id}/cancel`, {
      token: f.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: { reason: "she is with her sister" },
    });
    expect(cancel.status).toBe(200);
    const refused = await rate(f.daughter.token, cancelled, { provider: 1 });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/cancelled visit cannot be rated/);

    const noShow = await scheduledVisit(f, p, 4);
    const failure = await t.request("POST", `/v1/visits/${noShow}/provider-failure`, {
      token: operator.token,
      headers: { "idempotency-key": idemKey() },
      body: { kind: "no_show", reason: "nobody came" },
    });
    expect(failure.status).toBe(200);
    expect((await rate(f.daughter.token, noShow, { provider: 1 })).status).toBe(409);
    expect(await providerRating(p.id)).toEqual([3, 1]);
  });

  it("rates the worker when the visit had one, and keeps the worker's average", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    const w = await worker(p);
    const a = await verifiedVisit(f, p, { workerId: w });
    const b = await verifiedVisit(f, p, { workerId: w });
    const none = await verifiedVisit(f, p);

    expect((await rate(f.daughter.token, a, { provider: 4, worker: 5 })).body.workerRating).toBe(5);
    expect((await rate(f.son.token, b, { provider: 4, worker: 2 })).status).toBe(201);
    const noWorker = await rate(f.daughter.token, none, { provider: 4, worker: 5 });
    expect(noWorker.status).toBe(400);
    expect(noWorker.body.error.details.issues[0].path).toBe("worker");

    const avg = await t.request("GET", `/v1/workers/${w}/rating`, { token: f.son.token });
    expect(avg.status).toBe(200);
    expect(avg.body).toEqual({ workerId: w, providerId: p.id, rating: { average: 3.5, count: 2 } });
  });

  it("checks the input", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    const visitId = await verifiedVisit(f, p);
    for (const body of [{ provider: 0 }, { provider: 6 }, { provider: 4.5 }, {}]) {
      expect((await rate(f.daughter.token, visitId, body)).status).toBe(400);
    }
    expect((await rate(f.daughter.token, newId(), { provider: 4 })).status).toBe(404);
  });

  it("only the resident's family rates: strangers get a 404, others related a 403", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    const visitId = await verifiedVisit(f, p);
    const stranger = await signUpFamily(t);

    const byStranger = await rate(stranger.token, visitId, { provider: 1 });
    expect(byStranger.status).toBe(404);
    expect((await rate(p.admin.token, visitId, { provider: 5 })).status).toBe(404);
    const byOperator = await rate(operator.token, visitId, { provider: 5 });
    expect(byOperator.status).toBe(403);
    expect(await providerRating(p.id)).toEqual([0, 0]);
  });
});

describe("replies", () => {
  it("the provider's admin replies once; another provider's admin and the family cannot", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    const other = await verifiedProvider(t, operator.token);
    const review = await rate(f.daughter.token, await verifiedVisit(f, p), {
      provider: 2,
      comment: "Late twice",
    });
    const reply = (token: string, text: string) =>
      t.request("POST", `/v1/reviews/${review.body.id}/reply`, { token, body: { text } });

    const intruder = await reply(other.admin.token, "Not us");
    expect(intruder.status).toBe(403);
    expect((await reply(f.daughter.token, "Replying to myself")).status).toBe(403);
    expect((await reply(operator.token, "From the desk")).status).toBe(403);

    const replied = await reply(p.admin.token, "Sorry: the bus was late, it will not happen again");
    expect(replied.status).toBe(200);
    expect(replied.body.reply.text).toBe("Sorry: the bus was late, it will not happen again");
    const twice = await reply(p.admin.token, "And another thing");
    expect(twice.status).toBe(409);

    const list = await reviewsOf(f.son.token, p.id);
    expect(list.body.items[0].reply.text).toMatch(/bus was late/);
    expect((await reply(p.admin.token, "x")).status).toBe(409);
    expect(
      (
        await t.request("POST", `/v1/reviews/${newId()}/reply`, {
          token: p.admin.token,
          body: { text: "x" },
        })
      ).status,
    ).toBe(404);
  });
});

describe("hiding", () => {
  it("only an operator hides a review: it leaves the list and the averages, the row and the audit log keep it", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    const w = await worker(p);
    const kind = await rate(f.daughter.token, await verifiedVisit(f, p, { workerId: w }), {
      provider: 5,
      worker: 5,
    });
    const abusive = await rate(f.son.token, await verifiedVisit(f, p, { workerId: w }), {
      provider: 1,
      worker: 1,
      comment: "Something nobody should have to read",
    });
    expect((await reviewsOf(f.son.token, p.id)).body.rating).toEqual({ average: 3, count: 2 });
    const hide = (token: string) =>
      t.request("POST", `/v1/reviews/${abusive.body.id}/hide`, {
        token,
        body: { reason: "insults the worker" },
      });

    expect((await hide(f.daughter.token)).status).toBe(403);
    expect((await hide(p.admin.token)).status).toBe(403);
    const hidden = await hide(operator.token);
    expect(hidden.status).toBe(200);
    expect(hidden.body.hidden).toMatchObject({ by: operator.id, reason: "insults the worker" });
    expect((await hide(operator.token)).status).toBe(409);

    const list = await reviewsOf(f.son.token, p.id);
    expect(list.body.items.map((r: { id: string }) => r.id)).toEqual([kind.body.id]);
    expect(list.body.rating).toEqual({ average: 5, count: 1 });
    expect(await providerRating(p.id)).toEqual([5, 1]);
    const workerAvg = await t.request("GET", `/v1/workers/${w}/rating`, { token: f.son.token });
    expect(workerAvg.body.rating).toEqual({ average: 5, count: 1 });

    // The provider can no longer reply to it; only operators may list hidden reviews.
    const reply = await t.request("POST", `/v1/reviews/${abusive.body.id}/reply`, {
      token: p.admin.token,
      body: { text: "We disagree" },
    });
    expect(reply.status).toBe(404);
    expect((await reviewsOf(p.admin.token, p.id, "?includeHidden=true")).status).toBe(403);
    const all = await reviewsOf(operator.token, p.id, "?includeHidden=true");
    expect(all.body.items.map((r: { id: string }) => r.id)).toEqual([
      abusive.body.id,
      kind.body.id,
    ]);
    expect(all.body.items[0]).toMatchObject({
      comment: "Something nobody should have to read",
      hidden: { by: operator.id, reason: "insults the worker" },
    });

    const row = await t.db
      .selectFrom("reviews")
      .selectAll()
      .where("id", "=", abusive.body.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      comment: "Something nobody should have to read",
      hidden_by: operator.id,
      hidden_reason: "insults the worker",
    });
    const audit = await t.db
      .selectFrom("audit_log")
      .selectAll()
      .where("entity_id", "=", abusive.body.id)
      .where("action", "=", "review.hide")
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_user_id: operator.id, resident_id: f.residentId });
    expect(JSON.parse(audit[0]!.details!)).toMatchObject({ providerId: p.id, providerRating: 1 });
  });
});

describe("listing", () => {
  it("any signed-in user reads a verified provider's reviews, newest first, a page at a time", async () => {
    const f = await family();
    const p = await verifiedProvider(t, operator.token);
    const ids: string[] = [];
    for (const stars of [3, 4, 5]) {
      const r = await rate(f.daughter.token, await verifiedVisit(f, p), { provider: stars });
      ids.push(r.body.id);
    }
    const stranger = await signUpFamily(t);
    const first = await reviewsOf(stranger.token, p.id, "?limit=2");
    expect(first.status).toBe(200);
    expect(first.body.items.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.rating).toEqual({ average: 4, count: 3 });
    const second = await reviewsOf(
      stranger.token,
      p.id,
      `?limit=2&before=${first.body.nextCursor}`,
    );
    expect(second.body.items.map((r: { id: string }) => r.id)).toEqual([ids[0]]);
    expect(second.body.nextCursor).toBeNull();

    expect((await t.request("GET", `/v1/providers/${p.id}/reviews`)).status).toBe(401);
    expect((await reviewsOf(stranger.token, newId())).status).toBe(404);
    const pending = await verifiedProvider(t, operator.token);
    await t.db
      .updateTable("providers")
      .set({ status: "pending" })
      .where("id", "=", pending.id)
      .execute();
    expect((await reviewsOf(stranger.token, pending.id)).status).toBe(404);
  });
});
