// Care visits through the API: assignment refusals, the worker's day, check-in proven by position
// or a device code (and the exceptions), offline entries sent twice, check-out blocked until every
// outcome is given, access notes only inside the visit, and the verified visit opening the review
// window.
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { rollSeries } from "../src/bookings/bookings.service";
import { accounts, balanceOf } from "../src/ledger/ledger";
import {
  connectDevice,
  nextMessage,
  publish,
  type Registered,
  registerDevice,
} from "./helpers/devices.factory";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { fund, idemKey, type Provider, verifiedProvider } from "./helpers/marketplace";
import { createResident } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";
import {
  assignedVisit,
  dayFrom,
  fullCheckOut,
  north,
  setCarePlan,
  type VisitSetup,
  verifiedWorker,
} from "./helpers/visits";

const START = "2026-11-22T09:00:00.000Z";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());
// Tests move the clock; each starts from the same morning.
beforeEach(() => t?.clock.set(START));

// --- small helpers -----------------------------------------------------------------------------

const plus = (at: string | Date, minutes: number) =>
  new Date(new Date(at).getTime() + minutes * 60_000);

/** The tasks and medications due in a visit, as kind:item@time. */
const dueOf = (items: { kind: string; itemId: string; dueTime: string }[]) =>
  items.map((i) => `${i.kind}:${i.itemId}@${i.dueTime}`);

/** What the default care plan has due in a 09:00–10:00 visit (not the 18:00 or 19:00 items). */
const MORNING = ["task:wash@", "task:breakfast@09:30", "medication:metformin@09:15"];

/** Another booking for the setup's resident with its provider, accepted unless told. */
async function book(
  s: VisitSetup,
  schedule: Record<string, unknown>,
  opts: { accept?: boolean; notes?: string } = {},
) {
  const res = await t.request("POST", "/v1/bookings", {
    token: s.daughter.token,
    headers: { "idempotency-key": idemKey() },
    body: {
      residentId: s.residentId,
      serviceId: s.provider.serviceId,
      schedule,
      ...(opts.notes ? { notes: opts.notes } : {}),
    },
  });
  expect(res.status).toBe(201);
  if (opts.accept ?? true) {
    const accepted = await t.request("POST", `/v1/bookings/${res.body.id}/answer`, {
      token: s.provider.admin.token,
      headers: { "idempotency-key": idemKey() },
      body: { accept: true },
    });
    expect(accepted.status).toBe(200);
  }
  return res.body.visits as { id: string; startsAt: string; endsAt: string }[];
}

function assign(
  visitId: string,
  workerId: string,
  token: string,
  scope: "visit" | "series" = "visit",
) {
  return t.request("PUT", `/v1/visits/${visitId}/worker`, {
    token,
    body: { workerId, scope },
  });
}

/** A refused assignment: 409 assignment_refused; returns its details. */
function refused(res: { status: number; body: any }) {
  expect(res.status).toBe(409);
  expect(res.body.error.code).toBe("assignment_refused");
  return res.body.error.details as {
    reason: string;
    visitId?: string;
    conflictingVisitId?: string;
  };
}

function entry(
  kind: "check-in" | "check-out",
  visitId: string,
  token: string,
  body: Record<string, unknown>,
  app = t,
) {
  return app.request("POST", `/v1/visits/${visitId}/${kind}`, { token, body });
}

const near = (metres = 30, accuracy = 15) => ({ ...north(metres), accuracy });

async function visitOf(s: VisitSetup, visitId = s.visitId) {
  const res = await t.request("GET", `/v1/visits/${visitId}`, { token: s.daughter.token });
  expect(res.status).toBe(200);
  return res.body;
}

async function entriesOf(visitId: string, app = t) {
  return app.db.selectFrom("visit_entries").selectAll().where("visit_id", "=", visitId).execute();
}

/** The deliveries queued for a person for one purpose (rows are written even with no channel). */
async function deliveries(purpose: string, userId: string) {
  const rows = await t.db
    .selectFrom("deliveries")
    .select(["channel", "status", "message"])
    .where("purpose", "=", purpose)
    .where("user_id", "=", userId)
    .execute();
  return rows.map((r) => ({ ...r, message: JSON.parse(r.message) as Record<string, unknown> }));
}

// --- the existing journey ------------------------------------------------------------------------

describe("a visit from check-in to verified", () => {
  it("checks in near the home, checks out with every outcome, and the review window opens", async () => {
    const s = await assignedVisit(t, operator.token);
    t.clock.set(plus(s.startsAt, 3));
    const checkIn = await entry("check-in", s.visitId, s.worker.user.token, {
      clientId: "in-1",
      position: near(40, 20),
    });
    expect(checkIn.status).toBe(201);
    expect(checkIn.body.entry.verification).toMatchObject({ method: "gps", verified: true });

    t.clock.set(plus(s.endsAt, 2));
    const out = await entry("check-out", s.visitId, s.worker.user.token, fullCheckOut("out-1"));
    expect(out.status).toBe(201);
    const visit = await visitOf(s);
    expect(visit).toMatchObject({ status: "verified" });
    expect(visit.reviewUntil).toBeTruthy();
    expect(await balanceOf(t.db, accounts.escrow(s.visitId).id)).toBe(12_000);
  });
});

// --- assignment ----------------------------------------------------------------------------------

describe("assigning a worker", () => {
  it("refuses a worker who already has an overlapping visit; back to back is fine", async () => {
    const s = await assignedVisit(t, operator.token);
    const day = dayFrom(t, 2);
    const [overlapping] = await book(s, { type: "once", date: day, time: "09:30" });
    const details = refused(await assign(overlapping!.id, s.worker.id, s.provider.admin.token));
    expect(details).toMatchObject({
      reason: "overlap",
      visitId: overlapping!.id,
      conflictingVisitId: s.visitId,
    });
    expect((await visitOf(s, overlapping!.id)).worker).toBeNull();

    for (const time of ["08:00", "10:00"]) {
      const [adjacent] = await book(s, { type: "once", date: day, time });
      const ok = await assign(adjacent!.id, s.worker.id, s.provider.admin.token);
      expect(ok.status).toBe(200);
      expect(ok.body.visit.worker).toMatchObject({ id: s.worker.id, name: "Li Wei" });
    }
  });

  it("the watch's settings keep late before missed", async () => {
    const patch = (body: Record<string, number>) =>
      t.request("PATCH", "/v1/settings", { token: operator.token, body });
    const bad = await patch({ "visits.missed_after_minutes": 10 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.issues[0].path).toBe("visits.missed_after_minutes");
    const ok = await patch({
      "visits.late_after_minutes": 10,
      "visits.missed_after_minutes": 20,
    });
    expect(ok.status).toBe(200);
    const back = await patch({
      "visits.late_after_minutes": 15,
      "visits.missed_after_minutes": 30,
    });
    expect(back.status).toBe(200);
  });

  it("two assignments of one worker at once to overlapping visits: one is refused", async () => {
    const s = await assignedVisit(t, operator.token, { assign: false });
    const [other] = await book(s, { type: "once", date: dayFrom(t, 2), time: "09:30" });
    const both = await Promise.all([
      assign(s.visitId, s.worker.id, s.provider.admin.token),
      assign(other!.id, s.worker.id, s.provider.admin.token),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    const assigned = await t.db
      .selectFrom("visits")
      .select("id")
      .where("worker_id", "=", s.worker.id)
      .execute();
    expect(assigned).toHaveLength(1);
  });

  it("a suspended worker loses their visits at once: the home, the plan and the key safe", async () => {
    const s = await assignedVisit(t, operator.token);
    const suspended = await t.request("POST", `/v1/workers/${s.worker.id}/status`, {
      token: operator.token,
      body: { status: "suspended", reason: "complaint under review" },
    });
    expect(suspended.status).toBe(200);
    t.clock.set(new Date(Date.parse(s.startsAt) + 60_000));
    const asWorker = { token: s.worker.user.token };
    expect((await t.request("GET", `/v1/visits/${s.visitId}`, asWorker)).status).toBe(404);
    expect((await t.request("GET", `/v1/visits/${s.visitId}/access-notes`, asWorker)).status).toBe(
      404,
    );
    const checkIn = await t.request("POST", `/v1/visits/${s.visitId}/check-in`, {
      ...asWorker,
      body: { clientId: "suspended-1", exceptionReason: "gps broken" },
    });
    expect(checkIn.status).toBe(404);
    expect((await t.request("GET", "/v1/me/visits", asWorker)).status).toBe(403);
    // The visit waits for another worker, and the provider's admins are told.
    expect((await visitOf(s)).worker).toBeNull();
    const told = await t.db
      .selectFrom("deliveries")
      .select("message")
      .where("purpose", "=", "visits_unassigned")
      .where("user_id", "=", s.provider.admin.id)
      .execute();
    expect(told).toHaveLength(1);
    expect(JSON.parse(told[0]!.message)).toMatchObject({ workerName: "Li Wei", visits: 1 });
  });

  it("refuses an unverified, a suspended, an uncertified or another provider's worker, with the reason", async () => {
    // 07:00 in Shanghai is 23:00 UTC the day before: the certificate is judged on the local day.
    const s = await assignedVisit(t, operator.token, {
      assign: false,
      schedule: { type: "once", date: dayFrom(t, 2), time: "07:00" },
    });
    expect(s.startsAt).toBe(`${dayFrom(t, 1)}T23:00:00.000Z`);
    const admin = s.provider.admin.token;

    const pending = await t.request("POST", `/v1/providers/${s.provider.id}/workers`, {
      token: admin,
      body: {
        legalName: "Zhao Min",
        phone: "+8613912345678",
        idDocumentNumber: "310101199201011234",
        skills: ["personal_care"],
        userId: null,
      },
    });
    expect(pending.status).toBe(201);
    expect(refused(await assign(s.visitId, pending.body.id, admin))).toMatchObject({
      reason: "unverified",
      visitId: s.visitId,
    });

    const suspended = await verifiedWorker(t, operator.token, s.provider, { name: "Sun Li" });
    const suspend = await t.request("POST", `/v1/workers/${suspended.id}/status`, {
      token: operator.token,
      body: { status: "suspended", reason: "Complaint under review" },
    });
    expect(suspend.status).toBe(200);
    expect(refused(await assign(s.visitId, suspended.id, admin)).reason).toBe("suspended");

    const expired = await verifiedWorker(t, operator.token, s.provider, {
      name: "Qian Hui",
      certificateExpires: dayFrom(t, 1),
    });
    expect(refused(await assign(s.visitId, expired.id, admin)).reason).toBe("certificate_expired");

    const elsewhere = await verifiedProvider(t, operator.token);
    const theirs = await verifiedWorker(t, operator.token, elsewhere, { name: "Zhou Yan" });
    expect(refused(await assign(s.visitId, theirs.id, admin)).reason).toBe("not_found");

    expect(await visitOf(s)).toMatchObject({ worker: null, state: "unassigned" });

    // A certificate is valid through its expiry day (in the resident's time zone).
    const lastDay = await verifiedWorker(t, operator.token, s.provider, {
      name: "Wu Fang",
      certificateExpires: dayFrom(t, 2),
    });
    const ok = await assign(s.visitId, lastDay.id, admin);
    expect(ok.status).toBe(200);
    expect(ok.body.assigned).toEqual([s.visitId]);
    expect(ok.body.visit).toMatchObject({ state: "assigned", worker: { name: "Wu Fang" } });
  });

  it("refuses a whole series when one of its visits clashes, and assigns none of them", async () => {
    const s = await assignedVisit(t, operator.token, {
      assign: false,
      schedule: {
        type: "weekly",
        days: ["tue"],
        time: "09:00",
        startDate: dayFrom(t, 2),
        weeks: 2,
      },
    });
    expect(s.visitIds).toHaveLength(2);
    // The worker already has the second Tuesday at 09:30.
    const [busy] = await book(s, { type: "once", date: dayFrom(t, 9), time: "09:30" });
    expect((await assign(busy!.id, s.worker.id, s.provider.admin.token)).status).toBe(200);

    const res = await assign(s.visitId, s.worker.id, s.provider.admin.token, "series");
    expect(refused(res)).toMatchObject({
      reason: "overlap",
      visitId: s.visitIds[1],
      conflictingVisitId: busy!.id,
    });
    for (const id of s.visitIds) expect((await visitOf(s, id)).worker).toBeNull();
  });

  it("refuses a visit whose booking the provider has not accepted yet", async () => {
    const s = await assignedVisit(t, operator.token);
    const [pending] = await book(
      s,
      { type: "once", date: dayFrom(t, 3), time: "09:00" },
      {
        accept: false,
      },
    );
    const res = await assign(pending!.id, s.worker.id, s.provider.admin.token);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("invalid_state");
    expect((await visitOf(s, pending!.id)).worker).toBeNull();
  });

  it("is for the provider only: the family may not (403), a stranger learns nothing (404)", async () => {
    const s = await assignedVisit(t, operator.token, { assign: false });
    const daughter = await assign(s.visitId, s.worker.id, s.daughter.token);
    expect(daughter.status).toBe(403);
    expect(daughter.body.error.code).toBe("forbidden");

    const stranger = await signUpFamily(t);
    const res = await assign(s.visitId, s.worker.id, stranger.token);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("not_found");

    const otherProvider = await verifiedProvider(t, operator.token);
    expect((await assign(s.visitId, s.worker.id, otherProvider.admin.token)).status).toBe(404);

    expect((await visitOf(s)).worker).toBeNull();

    // The operator desk sees every visit of a day (the unassigned ones too); a family member
    // must name a resident.
    const range = `from=${dayFrom(t, 0)}&to=${dayFrom(t, 3)}`;
    const all = await t.request("GET", `/v1/visits?${range}&unassigned=true`, {
      token: operator.token,
    });
    expect(all.status).toBe(200);
    expect(all.body.items.map((v: { id: string }) => v.id)).toContain(s.visitId);
    const bare = await t.request("GET", `/v1/visits?${range}`, { token: s.daughter.token });
    expect(bare.status).toBe(400);
  });

  it("tells the daughter and the son who is coming instead when the worker is replaced", async () => {
    const s = await assignedVisit(t, operator.token);
    // The first assignment told nobody of a replacement.
    expect(await deliveries("visit_reassigned", s.daughter.id)).toEqual([]);

    const chen = await verifiedWorker(t, operator.token, s.provider, { name: "Chen Jing" });
    const res = await assign(s.visitId, chen.id, s.provider.admin.token);
    expect(res.status).toBe(200);
    expect(res.body.visit.worker).toMatchObject({ id: chen.id, name: "Chen Jing" });

    for (const person of [s.daughter, s.son]) {
      const rows = await deliveries("visit_reassigned", person.id);
      // No push subscription and no phone: one push row, kept as skipped with the reason.
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        channel: "push",
        status: "skipped",
        message: {
          t: "visit_reassigned",
          residentName: "Grandma Wang",
          workerName: "Chen Jing",
          previousName: "Li Wei",
          startsAt: s.startsAt,
        },
      });
    }
    expect(await deliveries("visit_reassigned", s.provider.admin.id)).toEqual([]);
    // Li Wei hears she is off it.
    expect(await deliveries("visit_unassigned", s.worker.user.id)).toEqual([
      expect.objectContaining({
        message: expect.objectContaining({ t: "visit_unassigned", startsAt: s.startsAt, later: 0 }),
      }),
    ]);
    const audit = await t.db
      .selectFrom("audit_log")
      .select(["action", "details"])
      .where("entity_id", "=", s.visitId)
      .where("action", "=", "visit.reassign")
      .execute();
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.details!)).toEqual({
      workerId: chen.id,
      previousWorkerId: s.worker.id,
    });
  });

  it("a worker without an account is asked, once verified, to confirm the phone they are reached on", async () => {
    const s = await assignedVisit(t, operator.token, { assign: false });
    const phone = "+8613955501234";
    const made = await t.request("POST", `/v1/providers/${s.provider.id}/workers`, {
      token: s.provider.admin.token,
      body: { legalName: "Zhao Lan", phone, idDocumentNumber: "310101199203041234" },
    });
    expect(made.status).toBe(201);
    const invites = () =>
      t.db
        .selectFrom("deliveries")
        .select(["purpose", "channel", "phone"])
        .where("purpose", "=", "worker_invite")
        .where("phone", "=", phone)
        .execute();
    expect(await invites()).toEqual([]); // not before an operator verified them
    const verified = await t.request("POST", `/v1/workers/${made.body.id}/status`, {
      token: operator.token,
      body: { status: "verified" },
    });
    expect(verified.status).toBe(200);
    expect(await invites()).toEqual([{ purpose: "worker_invite", channel: "sms", phone }]);
    const number = await t.db
      .selectFrom("phone_numbers")
      .select(["invited_at", "confirmed_at"])
      .where("phone", "=", phone)
      .executeTakeFirstOrThrow();
    expect(number.invited_at).toBeTruthy();
    expect(number.confirmed_at).toBeNull();
  });

  it("with scope series, assigns that visit and every later one of a weekly booking", async () => {
    const s = await assignedVisit(t, operator.token, {
      assign: false,
      schedule: {
        type: "weekly",
        days: ["tue", "fri"],
        time: "09:00",
        startDate: dayFrom(t, 2),
        weeks: 2,
      },
    });
    // Two weeks of Tuesdays and Fridays, all inside the booking window.
    expect(s.visitIds).toHaveLength(4);
    const [first, second, ...rest] = s.visitIds;
    const res = await assign(second!, s.worker.id, s.provider.admin.token, "series");
    expect(res.status).toBe(200);
    expect(res.body.assigned).toEqual([second, ...rest]);

    const workersOf = async () => {
      const list = await t.request(
        "GET",
        `/v1/visits?providerId=${s.provider.id}&from=${dayFrom(t, 0)}&to=${dayFrom(t, 20)}`,
        { token: s.provider.admin.token },
      );
      expect(list.status).toBe(200);
      return list.body.items.map((v: { worker: { id: string } | null }) => v.worker?.id ?? null);
    };
    expect(await workersOf()).toEqual([null, s.worker.id, s.worker.id, s.worker.id]);
    // The series remembers its worker, for the visits it rolls forward later.
    const booking = await t.db
      .selectFrom("bookings")
      .select("worker_id")
      .where("id", "=", s.bookingId)
      .executeTakeFirstOrThrow();
    expect(booking.worker_id).toBe(s.worker.id);

    // Scope visit touches that visit only.
    const chen = await verifiedWorker(t, operator.token, s.provider, { name: "Chen Jing" });
    const one = await assign(first!, chen.id, s.provider.admin.token, "visit");
    expect(one.body.assigned).toEqual([first]);
    expect(await workersOf()).toEqual([chen.id, s.worker.id, s.worker.id, s.worker.id]);

    // Chen takes the rest of the series: the family hears once, not once per visit, and so
    // does the worker taken off it.
    const rest3 = await assign(second!, chen.id, s.provider.admin.token, "series");
    expect(rest3.body.assigned).toEqual([second, ...rest]);
    const told = await deliveries("visit_reassigned", s.daughter.id);
    expect(told).toHaveLength(1);
    expect(told[0]!.message).toMatchObject({ workerName: "Chen Jing", later: 2 });
    const off = await deliveries("visit_unassigned", s.worker.user.id);
    expect(off).toHaveLength(1);
    expect(off[0]!.message).toMatchObject({ later: 2 });
  });
});

// --- the worker's day ----------------------------------------------------------------------------

describe("the worker's day", () => {
  it("lists the day's visits in start order with where to go and what is due, never the access notes", async () => {
    const s = await assignedVisit(t, operator.token);
    const day = dayFrom(t, 2);
    // Booked and assigned in another order than they happen.
    t.clock.advance(60_000);
    const [afternoon] = await book(
      s,
      { type: "once", date: day, time: "14:00" },
      { notes: "Afternoon: bring the shopping" },
    );
    // 07:00 in Shanghai is the evening before in UTC, but the same local day.
    t.clock.advance(60_000);
    const [early] = await book(
      s,
      { type: "once", date: day, time: "07:00" },
      { notes: "Early: she takes her blood pressure first" },
    );
    const [tomorrow] = await book(s, { type: "once", date: dayFrom(t, 3), time: "09:00" });
    for (const v of [afternoon!, early!, tomorrow!]) {
      expect((await assign(v.id, s.worker.id, s.provider.admin.token)).status).toBe(200);
    }

    const res = await t.request("GET", `/v1/me/visits?date=${day}`, {
      token: s.worker.user.token,
    });
    expect(res.status).toBe(200);
    expect(res.body.date).toBe(day);
    const visits = res.body.visits as any[];
    expect(visits.map((v) => v.id)).toEqual([early!.id, s.visitId, afternoon!.id]);
    expect(visits.map((v) => v.localTime)).toEqual(["07:00", "09:00", "14:00"]);

    const morning = visits[1];
    expect(morning).toMatchObject({
      startsAt: s.startsAt,
      timeZone: "Asia/Shanghai",
      notes: "Ring twice, she is hard of hearing",
      state: "assigned",
      accessNotesAvailable: false,
      resident: {
        id: s.residentId,
        name: "Grandma Wang",
        address: "12 Lane 58, Xinhua Road, Changning, Shanghai, 200052",
        latitude: 31.2108,
        longitude: 121.4237,
      },
    });
    expect(morning.resident.mapLink).toContain("mlat=31.2108&mlon=121.4237");
    expect(dueOf(morning.items)).toEqual(MORNING);
    expect(morning.items[1]).toMatchObject({ title: "Breakfast", instructions: "Low sugar" });
    expect(morning.items[2]).toMatchObject({
      title: "Metformin",
      dose: "500 mg tablet",
      outcome: null,
    });
    // Nothing timed falls in 07:00–08:00 or 14:00–15:00: only the every-visit task.
    expect(dueOf(visits[0].items)).toEqual(["task:wash@"]);
    expect(dueOf(visits[2].items)).toEqual(["task:wash@"]);
    expect(visits[2].notes).toBe("Afternoon: bring the shopping");

    const text = JSON.stringify(res.body);
    expect(text).not.toContain("4711");
    expect(text).not.toContain("Key safe");

    const next = await t.request("GET", `/v1/me/visits?date=${dayFrom(t, 3)}`, {
      token: s.worker.user.token,
    });
    expect(next.body.visits.map((v: { id: string }) => v.id)).toEqual([tomorrow!.id]);

    // Without a date: today where the worker lives. At 06:30 in Shanghai it is still the day
    // before in UTC.
    const tz = await t.request("PATCH", "/v1/me", {
      token: s.worker.user.token,
      body: { timeZone: "Asia/Shanghai" },
    });
    expect(tz.status).toBe(200);
    t.clock.set(plus(early!.startsAt, -30));
    const today = await t.request("GET", "/v1/me/visits", { token: s.worker.user.token });
    expect(today.body).toMatchObject({ date: day, timeZone: "Asia/Shanghai" });
    expect(today.body.visits).toHaveLength(3);
  });

  it("is for care workers only", async () => {
    const s = await assignedVisit(t, operator.token);
    for (const token of [s.daughter.token, s.provider.admin.token]) {
      const res = await t.request("GET", `/v1/me/visits?date=${dayFrom(t, 2)}`, { token });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
    }
  });
});

// --- check-in --------------------------------------------------------------------------------------

describe("checking in", () => {
  it("near the home is proven by GPS, and the family hears of the arrival", async () => {
    const s = await assignedVisit(t, operator.token);
    // More than an hour before the start is too early, even at the door.
    t.clock.set(plus(s.startsAt, -61));
    const early = await entry("check-in", s.visitId, s.worker.user.token, {
      clientId: "in-0",
      position: near(40, 20),
    });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe("invalid_state");

    const now = plus(s.startsAt, 3);
    t.clock.set(now);
    const res = await entry("check-in", s.visitId, s.worker.user.token, {
      clientId: "in-1",
      position: near(40, 20),
    });
    expect(res.status).toBe(201);
    expect(res.body.duplicate).toBe(false);
    expect(res.body.entry).toMatchObject({
      kind: "check_in",
      worker: { id: s.worker.id, name: "Li Wei" },
      serviceType: "personal_care",
      occurredAt: now.toISOString(),
      receivedAt: now.toISOString(),
      offline: false,
      verification: { method: "gps", verified: true, exception: null, accuracyMeters: 20 },
    });
    expect(Math.abs(res.body.entry.verification.distanceMeters - 40)).toBeLessThanOrEqual(1);
    expect(await visitOf(s)).toMatchObject({ state: "in_progress", checkIn: { clientId: "in-1" } });

    for (const person of [s.daughter, s.son]) {
      const rows = await deliveries("visit_entry", person.id);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.message).toMatchObject({
        t: "visit_entry",
        kind: "check_in",
        workerName: "Li Wei",
        at: now.toISOString(),
      });
      expect(await deliveries("visit_exception", person.id)).toEqual([]);
    }
    expect(await deliveries("visit_exception", s.provider.admin.id)).toEqual([]);

    // A visit under way keeps its worker.
    const chen = await verifiedWorker(t, operator.token, s.provider, { name: "Chen Jing" });
    const swap = await assign(s.visitId, chen.id, s.provider.admin.token);
    expect(swap.status).toBe(409);
    expect(swap.body.error.code).toBe("invalid_state");
    expect((await visitOf(s)).worker.id).toBe(s.worker.id);
  });

  it("without proof needs a reason, and the exception is flagged to the provider and the primaries", async () => {
    const s = await assignedVisit(t, operator.token);
    t.clock.set(plus(s.startsAt, 5));
    const token = s.worker.user.token;

    const far = await entry("check-in", s.visitId, token, {
      clientId: "in-far",
      position: { ...north(600), accuracy: 20 },
    });
    expect(far.status).toBe(422);
    expect(far.body.error.code).toBe("reason_required");
    expect(far.body.error.details).toMatchObject({
      field: "exceptionReason",
      exception: "outside_radius",
    });
    expect(Math.abs(far.body.error.details.distanceMeters - 600)).toBeLessThan(2);

    const vague = await entry("check-in", s.visitId, token, {
      clientId: "in-vague",
      position: { ...north(10), accuracy: 2000 },
    });
    expect(vague.status).toBe(422);
    expect(vague.body.error.details.exception).toBe("position_too_vague");

    const nothing = await entry("check-in", s.visitId, token, { clientId: "in-nothing" });
    expect(nothing.status).toBe(422);
    expect(nothing.body.error).toMatchObject({
      code: "reason_required",
      details: { exception: "no_proof" },
    });

    // Refused entries leave no trace.
    expect(await entriesOf(s.visitId)).toHaveLength(0);
    expect((await visitOf(s)).state).toBe("assigned");

    const reason = "The lift is broken, waiting at the gate";
    // The phone sends the refused entry again, now with a reason: its client id is still free.
    const kept = await entry("check-in", s.visitId, token, {
      clientId: "in-far",
      position: { ...north(600), accuracy: 20 },
      exceptionReason: reason,
    });
    expect(kept.status).toBe(201);
    expect(kept.body.entry.verification).toMatchObject({
      method: "gps",
      verified: false,
      exception: "outside_radius",
      exceptionReason: reason,
    });

    const exceptionTo = async (userId: string) => deliveries("visit_exception", userId);
    const [toDaughter] = await exceptionTo(s.daughter.id);
    expect(toDaughter?.message).toMatchObject({
      t: "visit_exception",
      exception: "outside_radius",
      reason,
      workerName: "Li Wei",
    });
    expect(await exceptionTo(s.provider.admin.id)).toHaveLength(1);
    // The son is a member, not a primary: he hears of the arrival only.
    expect(await exceptionTo(s.son.id)).toEqual([]);
    expect(await deliveries("visit_entry", s.son.id)).toHaveLength(1);
  });

  it("is for the assigned worker only", async () => {
    const s = await assignedVisit(t, operator.token);
    const colleague = await verifiedWorker(t, operator.token, s.provider, { name: "Chen Jing" });
    t.clock.set(plus(s.startsAt, 1));
    const body = { clientId: "in-1", position: near() };

    const other = await entry("check-in", s.visitId, colleague.user.token, body);
    expect(other.status).toBe(404);
    const daughter = await entry("check-in", s.visitId, s.daughter.token, body);
    expect(daughter.status).toBe(403);
    expect(daughter.body.error.code).toBe("forbidden");
    const admin = await entry("check-in", s.visitId, s.provider.admin.token, body);
    expect(admin.status).toBe(403);
    expect(await entriesOf(s.visitId)).toHaveLength(0);
  });
});

// --- codes the family confirms ---------------------------------------------------------------------

describe("a presence code the family confirms", () => {
  it("goes to the worker, counts only once a relative confirmed it, and proves the check-in", async () => {
    const s = await assignedVisit(t, operator.token);
    const now = plus(s.startsAt, 1);
    t.clock.set(now);
    const token = s.worker.user.token;

    const forbidden = await t.request("POST", `/v1/visits/${s.visitId}/presence-codes`, {
      token: s.daughter.token,
      body: { via: "family" },
    });
    expect(forbidden.status).toBe(403);

    const made = await t.request("POST", `/v1/visits/${s.visitId}/presence-codes`, {
      token,
      body: { via: "family" },
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({
      via: "family",
      expiresAt: plus(now, 10).toISOString(),
      deviceIds: [],
    });
    const code = made.body.code as string;
    expect(code).toMatch(/^\d{6}$/);
    const [notice] = await deliveries("presence_code", s.son.id);
    expect(notice?.message).toMatchObject({ t: "presence_code", workerName: "Li Wei" });
    // The family hears the code from the worker at the door, not from kincare.
    expect(JSON.stringify(notice?.message)).not.toContain(code);

    const early = await entry("check-in", s.visitId, token, { clientId: "in-1", code });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe("invalid_state");

    const stranger = await signUpFamily(t);
    const confirmPath = `/v1/visits/${s.visitId}/presence-codes/confirm`;
    const notYours = await t.request("POST", confirmPath, {
      token: stranger.token,
      body: { code },
    });
    expect(notYours.status).toBe(404);

    const mistyped = await t.request("POST", confirmPath, {
      token: s.son.token,
      body: { code: String((Number(code) + 1) % 1_000_000).padStart(6, "0") },
    });
    expect(mistyped.status).toBe(422);
    expect(mistyped.body.error.code).toBe("code_invalid");

    const confirmed = await t.request("POST", confirmPath, { token: s.son.token, body: { code } });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toEqual({ visitId: s.visitId, confirmedAt: now.toISOString() });

    const res = await entry("check-in", s.visitId, token, { clientId: "in-2", code });
    expect(res.status).toBe(201);
    expect(res.body.entry.verification).toMatchObject({
      method: "family_code",
      verified: true,
      exception: null,
    });
  });
});

// --- offline entries and duplicates ---------------------------------------------------------------

describe("offline entries", () => {
  it("keep the phone's time, are recorded once when sent twice, and a client id is not reused", async () => {
    const s = await assignedVisit(t, operator.token);
    const [nextDay] = await book(s, { type: "once", date: dayFrom(t, 3), time: "09:00" });
    expect((await assign(nextDay!.id, s.worker.id, s.provider.admin.token)).status).toBe(200);
    const token = s.worker.user.token;

    const receivedAt = plus(s.startsAt, 15);
    const occurredAt = plus(receivedAt, -20).toISOString();
    t.clock.set(receivedAt);
    const body = { clientId: "offline-in", occurredAt, capturedOffline: true, position: near() };
    const first = await entry("check-in", s.visitId, token, body);
    expect(first.status).toBe(201);
    expect(first.body.entry).toMatchObject({
      occurredAt,
      receivedAt: receivedAt.toISOString(),
      offline: true,
      verification: { method: "gps", verified: true },
    });
    // The visit began when the worker arrived, not when the phone found a signal.
    expect(((await visitOf(s)).checkIn as { occurredAt: string }).occurredAt).toBe(occurredAt);

    // The phone's queue is replayed a minute later.
    t.clock.set(plus(receivedAt, 1));
    const again = await entry("check-in", s.visitId, token, body);
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    expect(again.body.entry).toMatchObject({
      id: first.body.entry.id,
      receivedAt: receivedAt.toISOString(),
    });
    expect(await entriesOf(s.visitId)).toHaveLength(1);
    expect(await deliveries("visit_entry", s.daughter.id)).toHaveLength(1);

    // The next day, the same client id for another visit's check-out is a conflict.
    t.clock.set(plus(nextDay!.startsAt, 2));
    expect(
      (await entry("check-in", nextDay!.id, token, { clientId: "next-in", position: near() }))
        .status,
    ).toBe(201);
    t.clock.set(plus(nextDay!.endsAt, 1));
    const reused = await entry("check-out", nextDay!.id, token, fullCheckOut("offline-in"));
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe("conflict");
    expect((await entriesOf(nextDay!.id)).map((e) => e.kind)).toEqual(["check_in"]);
  });
});

describe("the same entry sent twice at once", () => {
  it("is recorded once, and the other request answers with it", async () => {
    const s = await assignedVisit(t, operator.token);
    const token = s.worker.user.token;
    t.clock.set(plus(s.startsAt, 1));
    const checkIn = { clientId: "twice-in", position: near() };
    const ins = await Promise.all([
      entry("check-in", s.visitId, token, checkIn),
      entry("check-in", s.visitId, token, checkIn),
    ]);
    expect(ins.map((r) => r.status).sort()).toEqual([200, 201]);
    expect(ins[0]!.body.entry.id).toBe(ins[1]!.body.entry.id);

    t.clock.set(plus(s.endsAt, 1));
    const outs = await Promise.all([
      entry("check-out", s.visitId, token, fullCheckOut("twice-out")),
      entry("check-out", s.visitId, token, fullCheckOut("twice-out")),
    ]);
    expect(outs.map((r) => r.status).sort()).toEqual([200, 201]);
    expect(outs[0]!.body.entry.id).toBe(outs[1]!.body.entry.id);
    expect((await entriesOf(s.visitId)).map((e) => e.kind).sort()).toEqual([
      "check_in",
      "check_out",
    ]);
    expect((await visitOf(s)).status).toBe("verified");
    expect(await deliveries("visit_entry", s.daughter.id)).toHaveLength(2);
  });
});

// --- check-out -------------------------------------------------------------------------------------

describe("checking out", () => {
  it("waits for an outcome for every item and a comment on a short visit, then verifies the visit", async () => {
    const s = await assignedVisit(t, operator.token);
    const token = s.worker.user.token;
    t.clock.set(s.startsAt);
    expect(
      (await entry("check-in", s.visitId, token, { clientId: "in", position: near() })).status,
    ).toBe(201);

    // The family adds a task while the worker is there: the visit keeps the plan it began with.
    const plan = await t.request("GET", `/v1/residents/${s.residentId}/care-plan`, {
      token: s.daughter.token,
    });
    const changed = await t.request("PUT", `/v1/residents/${s.residentId}/care-plan`, {
      token: s.daughter.token,
      body: {
        baseVersion: plan.body.version,
        plan: {
          ...plan.body.plan,
          tasks: [
            ...plan.body.plan.tasks,
            {
              id: "blood-pressure",
              title: "Take her blood pressure",
              instructions: null,
              schedule: { kind: "every_visit" },
            },
          ],
        },
      },
    });
    expect(changed.status).toBe(200);

    // 20 minutes in: 40 minutes early for a 60-minute visit.
    const outAt = plus(s.startsAt, 20);
    t.clock.set(outAt);
    const { outcomes: all, ...rest } = fullCheckOut("out");
    const [wash, breakfast, metformin] = all;

    const none = await entry("check-out", s.visitId, token, rest);
    expect(none.status).toBe(422);
    expect(none.body.error.code).toBe("outcomes_required");
    expect(dueOf(none.body.error.details.missing)).toEqual(MORNING);

    // Part of the outcomes in a refused check-out: nothing is kept.
    const partial = await entry("check-out", s.visitId, token, { ...rest, outcomes: [wash] });
    expect(partial.status).toBe(422);
    expect(dueOf(partial.body.error.details.missing)).toEqual(MORNING.slice(1));
    expect(
      await t.db
        .selectFrom("visit_outcomes")
        .select("item_id")
        .where("visit_id", "=", s.visitId)
        .execute(),
    ).toEqual([]);
    expect(await visitOf(s)).toMatchObject({ state: "in_progress", checkOut: null });
    expect((await entriesOf(s.visitId)).map((e) => e.kind)).toEqual(["check_in"]);

    // Not done needs a reason.
    const noReason = { kind: "task", itemId: "breakfast", dueTime: "09:30", outcome: "not_done" };
    const bad = await entry("check-out", s.visitId, token, { ...rest, outcomes: [noReason] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("validation_failed");
    const badTick = await t.request("PUT", `/v1/visits/${s.visitId}/outcomes`, {
      token,
      body: { outcomes: [noReason] },
    });
    expect(badTick.status).toBe(400);
    expect(badTick.body.error.code).toBe("validation_failed");

    // The evening walk is not due in a morning visit.
    const notDue = await t.request("PUT", `/v1/visits/${s.visitId}/outcomes`, {
      token,
      body: {
        outcomes: [{ kind: "task", itemId: "evening-walk", dueTime: "18:00", outcome: "done" }],
      },
    });
    expect(notDue.status).toBe(400);
    expect(notDue.body.error.details.issues).toEqual([
      expect.objectContaining({ path: "outcomes.0" }),
    ]);

    // Ticked off during the visit: the check-out needs only the rest.
    const ticked = await t.request("PUT", `/v1/visits/${s.visitId}/outcomes`, {
      token,
      body: { outcomes: [wash, metformin] },
    });
    expect(ticked.status).toBe(200);
    expect(
      ticked.body.items.map((i: { itemId: string; outcome: { outcome: string } | null }) => [
        i.itemId,
        i.outcome?.outcome ?? null,
      ]),
    ).toEqual([
      ["wash", "done"],
      ["breakfast", null],
      ["metformin", "refused"],
    ]);

    const short = await entry("check-out", s.visitId, token, { ...rest, outcomes: [breakfast] });
    expect(short.status).toBe(422);
    expect(short.body.error).toMatchObject({
      code: "reason_required",
      details: { field: "durationComment", actualMinutes: 20, plannedMinutes: 60 },
    });

    const done = await entry("check-out", s.visitId, token, {
      ...rest,
      outcomes: [breakfast],
      durationComment: "She had a doctor's appointment at ten",
    });
    expect(done.status).toBe(201);
    expect(done.body).toMatchObject({ duplicate: false, verified: true });
    expect(done.body.entry).toMatchObject({
      kind: "check_out",
      notes: "Washed and dressed; breakfast eaten.",
      wellbeing: { mood: "good", appetite: "good", concerns: "" },
      durationComment: "She had a doctor's appointment at ten",
    });

    const reviewUntil = plus(outAt, 48 * 60).toISOString();
    const visit = await visitOf(s);
    expect(visit).toMatchObject({
      status: "verified",
      verifiedAt: outAt.toISOString(),
      reviewUntil,
      checkOut: { occurredAt: outAt.toISOString() },
    });
    expect(
      visit.items.map(
        (i: { itemId: string; outcome: { outcome: string; reason: string | null } }) => [
          i.itemId,
          i.outcome.outcome,
          i.outcome.reason,
        ],
      ),
    ).toEqual([
      ["wash", "done", null],
      ["breakfast", "done", null],
      ["metformin", "refused", "Said she already took it"],
    ]);
    const jobs = await t.db
      .selectFrom("jobs")
      .select(["payload", "due_at", "status"])
      .where("kind", "=", "visits.release")
      .where("dedupe_key", "=", `visit-release:${s.visitId}`)
      .execute();
    expect(jobs).toHaveLength(1);
    expect(JSON.parse(jobs[0]!.payload)).toEqual({ visitId: s.visitId });
    expect(jobs[0]).toMatchObject({ due_at: reviewUntil, status: "pending" });
    // The family hears the worker left, with how many items were done.
    const left = (await deliveries("visit_entry", s.son.id)).find(
      (d) => d.message.kind === "check_out",
    );
    expect(left?.message).toMatchObject({ done: 2, due: 3 });
  });
});

// --- access notes --------------------------------------------------------------------------------

describe("access notes", () => {
  it("are shown to the worker between check-in and check-out only, and every reveal is audited", async () => {
    const s = await assignedVisit(t, operator.token);
    const token = s.worker.user.token;
    const path = `/v1/visits/${s.visitId}/access-notes`;
    t.clock.set(plus(s.startsAt, -10));

    const before = await t.request("GET", path, { token });
    expect(before.status).toBe(403);
    expect(before.body.error.code).toBe("forbidden");

    expect(
      (await entry("check-in", s.visitId, token, { clientId: "in", position: near() })).status,
    ).toBe(201);
    const during = await t.request("GET", path, { token });
    expect(during.status).toBe(200);
    expect(during.body).toEqual({
      visitId: s.visitId,
      accessNotes: "Key safe by the door, code 4711",
    });
    const audit = await t.db
      .selectFrom("audit_log")
      .select(["actor_user_id", "entity_id", "details"])
      .where("action", "=", "resident.access_notes.read")
      .where("resident_id", "=", s.residentId)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_user_id: s.worker.user.id, entity_id: s.residentId });
    expect(JSON.parse(audit[0]!.details!)).toEqual({ visitId: s.visitId });

    // The family reads them on the resident, not through the visit.
    const daughter = await t.request("GET", path, { token: s.daughter.token });
    expect(daughter.status).toBe(403);

    t.clock.set(plus(s.endsAt, 1));
    expect((await entry("check-out", s.visitId, token, fullCheckOut("out"))).status).toBe(201);
    const after = await t.request("GET", path, { token });
    expect(after.status).toBe(403);
    expect(
      await t.db
        .selectFrom("audit_log")
        .select("id")
        .where("action", "=", "resident.access_notes.read")
        .where("resident_id", "=", s.residentId)
        .execute(),
    ).toHaveLength(1);
  });
});

// --- a weekly series across a daylight-saving change ----------------------------------------------

describe("a weekly series across the end of daylight saving time", () => {
  it("stays at 09:00 local in New York, with the care plan due in local time on both sides", async () => {
    // Clocks in New York go back on Sunday 2026-11-01.
    t.clock.set("2026-10-20T12:00:00.000Z");
    const daughter = await signUpFamily(t, { displayName: "Li Na" });
    const residentId = (
      await createResident(t, daughter.token, {
        relationship: "daughter",
        timeZone: "America/New_York",
      })
    ).id;
    await t.request("POST", `/v1/residents/${residentId}/confirm`, { token: operator.token });
    await setCarePlan(t, daughter.token, residentId);
    const provider: Provider = await verifiedProvider(t, operator.token);
    const worker = await verifiedWorker(t, operator.token, provider);
    await fund(t, operator.token, residentId, daughter.id, 60_000);

    const booked = await t.request("POST", "/v1/bookings", {
      token: daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: {
        residentId,
        serviceId: provider.serviceId,
        schedule: {
          type: "weekly",
          days: ["mon"],
          time: "09:00",
          startDate: "2026-10-26",
          weeks: 3,
        },
      },
    });
    expect(booked.status).toBe(201);
    const visits = booked.body.visits as { id: string; startsAt: string; localTime: string }[];
    // Inside the 14-day window: 26 October (EDT, UTC-4) and 2 November (EST, UTC-5).
    expect(visits.map((v) => v.startsAt)).toEqual([
      "2026-10-26T13:00:00.000Z",
      "2026-11-02T14:00:00.000Z",
    ]);
    expect(
      await t.request("POST", `/v1/bookings/${booked.body.id}/answer`, {
        token: provider.admin.token,
        headers: { "idempotency-key": idemKey() },
        body: { accept: true },
      }),
    ).toMatchObject({ status: 200 });

    const res = await assign(visits[0]!.id, worker.id, provider.admin.token, "series");
    expect(res.status).toBe(200);
    expect(res.body.assigned).toEqual(visits.map((v) => v.id));

    const dayOf = async (date: string) => {
      const day = await t.request("GET", `/v1/me/visits?date=${date}`, {
        token: worker.user.token,
      });
      expect(day.status).toBe(200);
      expect(day.body.visits).toHaveLength(1);
      return day.body.visits[0];
    };
    for (const [date, startsAt] of [
      ["2026-10-26", "2026-10-26T13:00:00.000Z"],
      ["2026-11-02", "2026-11-02T14:00:00.000Z"],
    ] as const) {
      const v = await dayOf(date);
      expect(v).toMatchObject({
        localDate: date,
        localTime: "09:00",
        startsAt,
        timeZone: "America/New_York",
      });
      expect(dueOf(v.items)).toEqual(MORNING);
    }

    // A week on, the series rolls forward a visit, still at 09:00 EST, still the same worker.
    t.clock.set("2026-10-27T12:00:00.000Z");
    await rollSeries(t.db, t.clock.now(), async () => {});
    const rolled = await dayOf("2026-11-09");
    expect(rolled).toMatchObject({
      localTime: "09:00",
      startsAt: "2026-11-09T14:00:00.000Z",
      worker: { id: worker.id },
    });
    expect(dueOf(rolled.items)).toEqual(MORNING);
  });
});

// --- codes shown by the home device (over MQTT) ---------------------------------------------------

describe("a presence code shown by the home device", () => {
  let d: TestApp;
  let op: SignedIn;

  beforeAll(async () => {
    d = await createTestApp({ mqtt: true });
    op = await createOperator(d);
  });
  afterAll(() => d?.close());

  /** A home hub for the resident, connected, listening for commands and saying it is online. */
  async function onlineHub(s: VisitSetup): Promise<{ device: Registered; client: MqttClient }> {
    const device = await registerDevice(d, s.daughter.token, s.residentId, { kind: "hub" });
    const client = await connectDevice(d, device);
    await client.subscribeAsync(device.commandTopic, { qos: 1 });
    await publish(d, client, `${device.topicRoot}status`, "online", { qos: 1 });
    return { device, client };
  }

  /** Asks for a device code and returns what the device was told to show. */
  async function showCode(s: VisitSetup, hub: { device: Registered; client: MqttClient }) {
    const shown = nextMessage(hub.client, hub.device.commandTopic, 10_000);
    const res = await d.request("POST", `/v1/visits/${s.visitId}/presence-codes`, {
      token: s.worker.user.token,
      body: { via: "device" },
    });
    expect(res.status).toBe(201);
    // The worker must read the code off the device: the answer does not carry it.
    expect(res.body).toMatchObject({
      via: "device",
      code: null,
      deviceIds: [hub.device.id],
      sentToDevices: 1,
    });
    expect(res.body).not.toHaveProperty("send");
    const cmd = await shown;
    expect(cmd).toMatchObject({ type: "show_code", expiresAt: res.body.expiresAt });
    expect(cmd.code).toMatch(/^\d{6}$/);
    return cmd.code as string;
  }

  const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");

  it("is sent to the device as show_code and proves the check-in", async () => {
    const s = await assignedVisit(d, op.token);
    const hub = await onlineHub(s);
    try {
      d.clock.set(plus(s.startsAt, 2));
      const code = await showCode(s, hub);
      const res = await entry(
        "check-in",
        s.visitId,
        s.worker.user.token,
        { clientId: "in", code },
        d,
      );
      expect(res.status).toBe(201);
      expect(res.body.entry.verification).toMatchObject({
        method: "device_code",
        verified: true,
        exception: null,
      });
    } finally {
      await hub.client.endAsync();
    }
  });

  it("refuses a wrong code, and after five wrong tries the right one no longer works", async () => {
    const s = await assignedVisit(d, op.token);
    const hub = await onlineHub(s);
    try {
      d.clock.set(plus(s.startsAt, 2));
      const code = await showCode(s, hub);
      const token = s.worker.user.token;
      for (let i = 0; i < 5; i++) {
        const res = await entry(
          "check-in",
          s.visitId,
          token,
          { clientId: `bad-${i}`, code: wrong(code) },
          d,
        );
        expect(res.status).toBe(422);
        expect(res.body.error.code).toBe("code_invalid");
      }
      const burnt = await entry("check-in", s.visitId, token, { clientId: "right", code }, d);
      expect(burnt.status).toBe(422);
      expect(burnt.body.error.code).toBe("code_invalid");
      expect(await entriesOf(s.visitId, d)).toHaveLength(0);

      // A new code works.
      const fresh = await showCode(s, hub);
      const ok = await entry("check-in", s.visitId, token, { clientId: "fresh", code: fresh }, d);
      expect(ok.status).toBe(201);
      expect(ok.body.entry.verification.method).toBe("device_code");
    } finally {
      await hub.client.endAsync();
    }
  });

  it("captured offline is judged at the time it was captured, not when it arrived", async () => {
    const s = await assignedVisit(d, op.token);
    const hub = await onlineHub(s);
    try {
      const asked = plus(s.startsAt, 2);
      d.clock.set(asked);
      const code = await showCode(s, hub);
      const token = s.worker.user.token;
      // Half an hour later the code (good for ten minutes) has expired.
      d.clock.set(plus(asked, 30));
      const late = await entry("check-in", s.visitId, token, { clientId: "late", code }, d);
      expect(late.status).toBe(422);
      expect(late.body.error.code).toBe("code_invalid");

      const occurredAt = plus(asked, 3).toISOString();
      const res = await entry(
        "check-in",
        s.visitId,
        token,
        { clientId: "queued", code, occurredAt, capturedOffline: true },
        d,
      );
      expect(res.status).toBe(201);
      expect(res.body.entry).toMatchObject({
        occurredAt,
        receivedAt: plus(asked, 30).toISOString(),
        offline: true,
        verification: { method: "device_code", verified: true },
      });
    } finally {
      await hub.client.endAsync();
    }
  });

  it("needs a device that is online", async () => {
    const s = await assignedVisit(d, op.token);
    // Registered, never connected.
    await registerDevice(d, s.daughter.token, s.residentId, { kind: "hub" });
    d.clock.set(plus(s.startsAt, 2));
    const res = await d.request("POST", `/v1/visits/${s.visitId}/presence-codes`, {
      token: s.worker.user.token,
      body: { via: "device" },
    });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("invalid_state");
    expect(
      await d.db.selectFrom("visit_codes").select("id").where("visit_id", "=", s.visitId).execute(),
    ).toEqual([]);
  });
});
