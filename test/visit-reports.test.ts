// A month of care for one resident, end to end, and what the family and the payers read about it.
// The marketplace journey with every balance checked at every step (two relatives top up, book,
// the provider accepts and assigns a worker, the worker checks in and out, the daughter confirms,
// the provider is paid net of commission and paid out); then a visit nobody came to (the visit
// watch marks it missed), one cancelled, vital signs and another home's visits proven only by
// the worker's word. The care log shows the visits with their outcomes, notes and wellbeing, the
// alerts and the vitals; the monthly report counts them, as JSON and as the same figures in CSV;
// the EVV export has one row per verified visit and defuses a worker's name that is a formula.
// The tests run in order: each builds on the month the ones before made.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accounts, balanceOf, ledgerInvariants } from "../src/ledger/ledger";
import { evvColumns } from "../src/visits/reports";
import { withRollups } from "../src/vitals/vitals.table";
import { createOperator, type SignedIn, signUpFamily, unique } from "./helpers/factories";
import { fund, idemKey, type Provider, verifiedProvider } from "./helpers/marketplace";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { type ApiResponse, createTestApp, type TestApp } from "./helpers/test-app";
import {
  carePlanItems,
  fullCheckOut,
  north,
  setCarePlan,
  verifiedWorker,
  type WorkerOf,
} from "./helpers/visits";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

/** The instant of a Shanghai wall-clock time (UTC+8 all year). */
const shanghai = (date: string, time: string) => new Date(`${date}T${time}:00+08:00`);

const FORMULA_NAME = '=HYPERLINK("http://evil.example","click")';

/** What the tests before have made, for the tests after. */
const m = {} as {
  daughter: SignedIn;
  son: SignedIn;
  residentId: string;
  provider: Provider;
  worker: WorkerOf;
  completed: string;
  completedIn: { at: string; position: { latitude: number; longitude: number } };
  completedOut: { at: string; position: { latitude: number; longitude: number } };
  missed: string;
  cancelled: string;
  other: { daughter: SignedIn; residentId: string; worker: WorkerOf };
  exceptional: string;
  exceptionalIn: string;
  exceptionalOut: string;
  inProgress: string;
};

function expectOk(res: ApiResponse, status = 200) {
  if (res.status !== status) throw new Error(`${res.status}: ${JSON.stringify(res.body)}`);
}

async function book(token: string, residentId: string, date: string, time = "09:00") {
  const res = await t.request("POST", "/v1/bookings", {
    token,
    headers: { "idempotency-key": idemKey() },
    body: {
      residentId,
      serviceId: m.provider.serviceId,
      schedule: { type: "once", date, time },
    },
  });
  expectOk(res, 201);
  const accepted = await t.request("POST", `/v1/bookings/${res.body.id}/answer`, {
    token: m.provider.admin.token,
    headers: { "idempotency-key": idemKey() },
    body: { accept: true },
  });
  expectOk(accepted);
  return { bookingId: res.body.id as string, visitId: res.body.visits[0].id as string };
}

async function assign(visitId: string, worker: WorkerOf) {
  expectOk(
    await t.request("PUT", `/v1/visits/${visitId}/worker`, {
      token: m.provider.admin.token,
      body: { workerId: worker.id, scope: "visit" },
    }),
  );
}

/** Cells of a CSV document (RFC 4180 quoting), one array per line. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length > 0) rows.push([...row, cell]);
  return rows;
}

/** The EVV rows as objects keyed by column. */
function evvRows(res: ApiResponse): Record<string, string>[] {
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/csv");
  const [header, ...rows] = parseCsv(String(res.body));
  expect(header).toEqual([...evvColumns]);
  return rows.map((r) => {
    expect(r).toHaveLength(evvColumns.length);
    return Object.fromEntries(header!.map((h, i) => [h, r[i]!]));
  });
}

const evv = (token: string, query: Record<string, string>) =>
  t.request("GET", `/v1/evv/visits.csv?${new URLSearchParams(query)}`, { token });

describe("a month of care, from the first top-up to the EVV export", () => {
  it("the marketplace journey: every balance at every step, and the ledger sound at the end", async () => {
    m.daughter = await signUpFamily(t, { displayName: "Li Na" });
    m.son = await signUpFamily(t, { displayName: "Li Lei" });
    m.residentId = (await createResident(t, m.daughter.token, { relationship: "daughter" })).id;
    expectOk(
      await t.request("POST", `/v1/residents/${m.residentId}/confirm`, { token: operator.token }),
    );
    await joinCircle(t, m.daughter.token, m.residentId, m.son);
    // The plan's morning items plus a third task at every visit: three tasks and one medication.
    const plan = await t.request("GET", `/v1/residents/${m.residentId}/care-plan`, {
      token: m.daughter.token,
    });
    expectOk(
      await t.request("PUT", `/v1/residents/${m.residentId}/care-plan`, {
        token: m.daughter.token,
        body: {
          baseVersion: plan.body.version,
          plan: {
            ...plan.body.plan,
            tasks: [
              ...carePlanItems.tasks,
              {
                id: "exercises",
                title: "Leg exercises",
                instructions: null,
                schedule: { kind: "every_visit" },
              },
            ],
            medications: carePlanItems.medications,
          },
        },
      }),
    );
    m.provider = await verifiedProvider(t, operator.token, { priceMinor: 12_000 });
    m.worker = await verifiedWorker(t, operator.token, m.provider);

    const wallet = accounts.wallet(m.residentId).id;
    const payable = accounts.payable(m.provider.id).id;
    const revenue = accounts.revenue().id;
    const outside = accounts.outside().id;
    const base = {
      revenue: await balanceOf(t.db, revenue),
      outside: await balanceOf(t.db, outside),
    };
    let escrow: string | null = null;
    const expectBalances = async (
      step: string,
      b: { wallet: number; escrow: number; payable: number; revenue: number; outside: number },
    ) => {
      const actual = {
        wallet: await balanceOf(t.db, wallet),
        escrow: escrow ? await balanceOf(t.db, escrow) : 0,
        payable: await balanceOf(t.db, payable),
        revenue: (await balanceOf(t.db, revenue)) - base.revenue,
        outside: (await balanceOf(t.db, outside)) - base.outside,
      };
      expect(actual, step).toEqual(b);
    };
    await expectBalances("before", { wallet: 0, escrow: 0, payable: 0, revenue: 0, outside: 0 });

    await fund(t, operator.token, m.residentId, m.daughter.id, 60_000);
    await expectBalances("the daughter's top-up", {
      wallet: 60_000,
      escrow: 0,
      payable: 0,
      revenue: 0,
      outside: -60_000,
    });
    await fund(t, operator.token, m.residentId, m.son.id, 40_000);
    const funded = { wallet: 100_000, escrow: 0, payable: 0, revenue: 0, outside: -100_000 };
    await expectBalances("the son's top-up", funded);

    const booked = await t.request("POST", "/v1/bookings", {
      token: m.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: {
        residentId: m.residentId,
        serviceId: m.provider.serviceId,
        schedule: { type: "once", date: "2026-11-24", time: "09:00" },
        notes: "Ring twice, she is hard of hearing",
      },
    });
    expectOk(booked, 201);
    expect(booked.body).toMatchObject({ status: "pending", visitPrice: 12_000 });
    m.completed = booked.body.visits[0].id;
    escrow = accounts.escrow(m.completed).id;
    const escrowed = { ...funded, wallet: 88_000, escrow: 12_000 };
    await expectBalances("booked", escrowed);

    const accepted = await t.request("POST", `/v1/bookings/${booked.body.id}/answer`, {
      token: m.provider.admin.token,
      headers: { "idempotency-key": idemKey() },
      body: { accept: true },
    });
    expect(accepted.body.status).toBe("accepted");
    await expectBalances("accepted", escrowed);

    await assign(m.completed, m.worker);
    await expectBalances("assigned", escrowed);

    const inAt = shanghai("2026-11-24", "09:03");
    t.clock.set(inAt);
    const inPosition = north(40);
    const checkIn = await t.request("POST", `/v1/visits/${m.completed}/check-in`, {
      token: m.worker.user.token,
      body: { clientId: "journey-in", position: { ...inPosition, accuracy: 20 } },
    });
    expectOk(checkIn, 201);
    expect(checkIn.body.entry.verification).toMatchObject({ method: "gps", verified: true });
    m.completedIn = { at: inAt.toISOString(), position: inPosition };
    await expectBalances("checked in", escrowed);

    const outAt = shanghai("2026-11-24", "10:02");
    t.clock.set(outAt);
    const body = fullCheckOut("journey-out", {
      wellbeing: { mood: "okay", appetite: "reduced", concerns: "A slight cough" },
      notes: "Washed and dressed; half of breakfast eaten.",
    }) as ReturnType<typeof fullCheckOut> & { outcomes: Record<string, string>[] };
    body.outcomes.push({
      kind: "task",
      itemId: "exercises",
      dueTime: "",
      outcome: "not_done",
      reason: "She was too tired",
    });
    const checkOut = await t.request("POST", `/v1/visits/${m.completed}/check-out`, {
      token: m.worker.user.token,
      body,
    });
    expectOk(checkOut, 201);
    m.completedOut = { at: outAt.toISOString(), position: north(20) };
    const verified = await t.request("GET", `/v1/visits/${m.completed}`, {
      token: m.daughter.token,
    });
    expect(verified.body.status).toBe("verified");
    await expectBalances("checked out: verified, the money still in escrow", escrowed);

    t.clock.set(shanghai("2026-11-24", "10:30"));
    const reviewKey = idemKey();
    const confirm = () =>
      t.request("POST", `/v1/visits/${m.completed}/review`, {
        token: m.daughter.token,
        headers: { "idempotency-key": reviewKey },
        body: { confirm: true },
      });
    const confirmed = await confirm();
    expectOk(confirmed);
    expect(confirmed.body.status).toBe("released");
    const released = { ...escrowed, escrow: 0, payable: 10_800, revenue: 1_200 };
    await expectBalances("confirmed: paid net of the 10% commission", released);
    // The same confirmation sent again answers the same and pays nothing more.
    expect((await confirm()).body).toEqual(confirmed.body);
    await expectBalances("confirmed twice", released);

    const payout = await t.request("POST", `/v1/providers/${m.provider.id}/payouts`, {
      token: operator.token,
      headers: { "idempotency-key": idemKey() },
      body: { amount: 10_800, reference: "bank batch 2026-11-24" },
    });
    expectOk(payout, 201);
    await expectBalances("paid out", { ...released, payable: 0, outside: -100_000 + 10_800 });

    expect(await ledgerInvariants(t.db)).toEqual({
      total: 0,
      unbalancedTransactions: [],
      negativeAccounts: [],
    });
  });

  it("the rest of the month: a visit nobody came to, one cancelled, vitals, another home's exceptions", async () => {
    const wallet = accounts.wallet(m.residentId).id;
    const missed = await book(m.daughter.token, m.residentId, "2026-11-26");
    m.missed = missed.visitId;
    await assign(m.missed, m.worker);
    const cancelled = await book(m.daughter.token, m.residentId, "2026-11-28");
    m.cancelled = cancelled.visitId;
    expect(await balanceOf(t.db, wallet)).toBe(88_000 - 24_000);
    const cancel = await t.request("POST", `/v1/bookings/${cancelled.bookingId}/cancel`, {
      token: m.daughter.token,
      headers: { "idempotency-key": idemKey() },
      body: { visitId: m.cancelled, reason: "She is visiting her sister" },
    });
    expectOk(cancel);
    expect(cancel.body.cancelled[0]).toMatchObject({ refunded: 12_000, fee: 0 });
    expect(await balanceOf(t.db, wallet)).toBe(88_000 - 12_000);

    // Another home served by the same provider, by a worker whose name is a spreadsheet formula.
    const otherDaughter = await signUpFamily(t, { displayName: "Chen Jie" });
    const otherResident = (
      await createResident(t, otherDaughter.token, {
        relationship: "daughter",
        fullName: "Chen Yumei",
      })
    ).id;
    expectOk(
      await t.request("POST", `/v1/residents/${otherResident}/confirm`, {
        token: operator.token,
      }),
    );
    await setCarePlan(t, otherDaughter.token, otherResident);
    await fund(t, operator.token, otherResident, otherDaughter.id, 30_000);
    const formulaWorker = await verifiedWorker(t, operator.token, m.provider, {
      name: FORMULA_NAME,
    });
    m.other = { daughter: otherDaughter, residentId: otherResident, worker: formulaWorker };
    m.exceptional = (await book(otherDaughter.token, otherResident, "2026-11-27")).visitId;
    m.inProgress = (await book(otherDaughter.token, otherResident, "2026-11-27", "14:00")).visitId;
    await assign(m.exceptional, formulaWorker);
    await assign(m.inProgress, formulaWorker);

    // Nobody comes on the 26th: the watch raises a late alert at 09:15, then the missed one at
    // 09:30, which resolves the late one.
    t.clock.set(shanghai("2026-11-26", "09:16"));
    await t.scheduler.drain();
    t.clock.set(shanghai("2026-11-26", "09:31"));
    await t.scheduler.drain();
    const watched = await t.request("GET", `/v1/visits/${m.missed}`, { token: m.daughter.token });
    expect(watched.body).toMatchObject({ status: "scheduled", state: "missed", missed: true });
    const alerts = await t.db
      .selectFrom("alerts")
      .select(["kind", "status"])
      .where("resident_id", "=", m.residentId)
      .orderBy("kind")
      .execute();
    expect(alerts).toEqual([
      { kind: "visit_late", status: "resolved" },
      { kind: "visit_missed", status: "open" },
    ]);

    // On the 27th, the other home: a check-in with no position sent late from an offline phone,
    // a check-out with no position either, and an afternoon visit checked in and not yet out.
    m.exceptionalIn = shanghai("2026-11-27", "09:05").toISOString();
    t.clock.set(shanghai("2026-11-27", "09:20"));
    const noSignal = await t.request("POST", `/v1/visits/${m.exceptional}/check-in`, {
      token: formulaWorker.user.token,
      body: {
        clientId: "other-in",
        occurredAt: m.exceptionalIn,
        exceptionReason: "Phone had no signal upstairs",
      },
    });
    expectOk(noSignal, 201);
    expect(noSignal.body.entry).toMatchObject({
      offline: true,
      verification: { method: "none", verified: false, exception: "no_proof" },
    });
    m.exceptionalOut = shanghai("2026-11-27", "10:04").toISOString();
    t.clock.set(m.exceptionalOut);
    expectOk(
      await t.request("POST", `/v1/visits/${m.exceptional}/check-out`, {
        token: formulaWorker.user.token,
        body: fullCheckOut("other-out", {
          position: undefined,
          exceptionReason: "Still no signal",
        }),
      }),
      201,
    );
    t.clock.set(shanghai("2026-11-27", "14:02"));
    expectOk(
      await t.request("POST", `/v1/visits/${m.inProgress}/check-in`, {
        token: formulaWorker.user.token,
        body: { clientId: "other-pm-in", position: { ...north(30), accuracy: 10 } },
      }),
      201,
    );

    // Vital signs of the month, as the readings table and the hourly rollups keep them; one
    // reading just before November and one just after it in Shanghai (still November in UTC).
    const reading = (type: string, unit: string, at: string, value: number) => ({
      resident_id: m.residentId,
      device_id: "dev-direct",
      msg_id: unique("m"),
      type,
      value,
      unit,
      measured_at: at,
      received_at: at,
    });
    await t.db
      .insertInto("readings")
      .values([
        reading("heart_rate", "/min", "2026-11-23T01:00:00.000Z", 72),
        reading("heart_rate", "/min", "2026-11-23T01:10:00.000Z", 80),
        reading("heart_rate", "/min", "2026-11-23T01:20:00.000Z", 125),
        reading("heart_rate", "/min", "2026-11-23T01:30:00.000Z", 45),
        reading("spo2", "%", "2026-11-23T01:05:00.000Z", 97),
        reading("spo2", "%", "2026-11-23T01:15:00.000Z", 95),
        reading("heart_rate", "/min", "2026-10-31T15:30:00.000Z", 200),
        reading("heart_rate", "/min", "2026-11-30T16:30:00.000Z", 30),
      ])
      .execute();
    await withRollups(t.db)
      .insertInto("reading_rollups")
      .values({
        resident_id: m.residentId,
        type: "heart_rate",
        hour_start: "2026-11-21T02:00:00.000Z",
        unit: "/min",
        reading_count: 3,
        value_sum: 210,
        value_min: 65,
        value_max: 75,
      })
      .execute();
  });

  /** Heart rate: four raw readings and a rolled-up hour of three; SpO2: two raw readings. */
  const expectedVitals = [
    {
      type: "heart_rate",
      unit: "/min",
      count: 7,
      min: 45,
      max: 125,
      mean: 76,
      normalRange: { min: 50, max: 110 },
      outOfRange: { below: 1, above: 1, judged: 4 },
    },
    {
      type: "spo2",
      unit: "%",
      count: 2,
      min: 95,
      max: 97,
      mean: 96,
      normalRange: { min: 92, max: null },
      outOfRange: { below: 0, above: 0, judged: 2 },
    },
  ];

  it("the care log shows each visit with its outcomes, notes and wellbeing, the alerts and the vitals, in time order", async () => {
    const res = await t.request(
      "GET",
      `/v1/residents/${m.residentId}/care-log?from=2026-11-20&to=2026-11-30`,
      { token: m.son.token },
    );
    expectOk(res);
    const log = res.body;
    expect(log).toMatchObject({
      resident: { id: m.residentId, name: "Grandma Wang", timeZone: "Asia/Shanghai" },
      from: "2026-11-20",
      to: "2026-11-30",
      start: "2026-11-19T16:00:00.000Z",
      end: "2026-11-30T16:00:00.000Z",
      counts: { visits: 3, alerts: 2 },
      truncated: { visits: false, alerts: false },
    });
    expect(log.items.map((i: { type: string }) => i.type)).toEqual([
      "visit",
      "visit",
      "alert",
      "alert",
      "visit",
    ]);
    const visits = log.items.filter((i: { type: string }) => i.type === "visit");
    expect(visits.map((i: { visit: { id: string } }) => i.visit.id)).toEqual([
      m.completed,
      m.missed,
      m.cancelled,
    ]);
    const ats = log.items.map((i: { at: string }) => i.at);
    expect([...ats].sort()).toEqual(ats);

    const [completed, missed, cancelled] = visits;
    expect(completed).toMatchObject({
      at: "2026-11-24T01:00:00.000Z",
      localDate: "2026-11-24",
      localTime: "09:00",
    });
    expect(completed.visit).toEqual({
      id: m.completed,
      bookingId: expect.any(String),
      status: "released",
      state: "released",
      scheduledStart: "2026-11-24T01:00:00.000Z",
      scheduledEnd: "2026-11-24T02:00:00.000Z",
      checkedInAt: m.completedIn.at,
      checkedOutAt: m.completedOut.at,
      durationMinutes: 59,
      service: { id: m.provider.serviceId, title: "Morning personal care", type: "personal_care" },
      provider: { id: m.provider.id, name: "Sunrise Home Care" },
      worker: { id: m.worker.id, name: "Li Wei" },
      checkIn: {
        at: m.completedIn.at,
        localTime: "09:03",
        method: "gps",
        verified: true,
        offline: false,
        exception: null,
        exceptionReason: null,
        distanceMeters: 40,
      },
      checkOut: {
        at: m.completedOut.at,
        localTime: "10:02",
        method: "gps",
        verified: true,
        offline: false,
        exception: null,
        exceptionReason: null,
        distanceMeters: 20,
      },
      tasks: [
        {
          itemId: "wash",
          title: "Help with washing",
          dueTime: "",
          dose: null,
          outcome: "done",
          reason: null,
          recordedAt: m.completedOut.at,
        },
        {
          itemId: "breakfast",
          title: "Breakfast",
          dueTime: "09:30",
          dose: null,
          outcome: "done",
          reason: null,
          recordedAt: m.completedOut.at,
        },
        {
          itemId: "exercises",
          title: "Leg exercises",
          dueTime: "",
          dose: null,
          outcome: "not_done",
          reason: "She was too tired",
          recordedAt: m.completedOut.at,
        },
      ],
      medications: [
        {
          itemId: "metformin",
          title: "Metformin",
          dueTime: "09:15",
          dose: "500 mg tablet",
          outcome: "refused",
          reason: "Said she already took it",
          recordedAt: m.completedOut.at,
        },
      ],
      notes: "Washed and dressed; half of breakfast eaten.",
      wellbeing: { mood: "okay", appetite: "reduced", concerns: "A slight cough" },
      durationComment: null,
      late: false,
      missed: false,
      cancelReason: null,
      disputeReason: null,
      price: 12_000,
      currency: "CNY",
    });

    // Nobody came: what was due, with nothing recorded; the worker who was expected.
    expect(missed.visit).toMatchObject({
      id: m.missed,
      status: "scheduled",
      state: "missed",
      late: true,
      missed: true,
      checkIn: null,
      checkOut: null,
      checkedInAt: null,
      durationMinutes: null,
      notes: null,
      wellbeing: null,
      worker: { id: m.worker.id, name: "Li Wei" },
    });
    expect(
      missed.visit.tasks.map((i: { itemId: string; outcome: unknown }) => [i.itemId, i.outcome]),
    ).toEqual([
      ["wash", null],
      ["breakfast", null],
      ["exercises", null],
    ]);
    expect(missed.visit.medications).toHaveLength(1);
    expect(cancelled.visit).toMatchObject({
      id: m.cancelled,
      status: "cancelled",
      state: "cancelled",
      cancelReason: "Cancelled by the family: She is visiting her sister",
      worker: null,
      tasks: [],
      medications: [],
    });

    const alerts = log.items.filter((i: { type: string }) => i.type === "alert");
    expect(alerts[0]).toMatchObject({ localDate: "2026-11-26", localTime: "09:16" });
    expect(alerts.map((i: { alert: unknown }) => i.alert)).toEqual([
      {
        id: expect.any(String),
        kind: "visit_late",
        severity: "warning",
        status: "resolved",
        summary: expect.stringContaining("No check-in yet"),
        openedAt: shanghai("2026-11-26", "09:16").toISOString(),
        acknowledgedAt: null,
        closedAt: shanghai("2026-11-26", "09:31").toISOString(),
        closeReason: "the visit is now missed",
        visitId: m.missed,
      },
      {
        id: expect.any(String),
        kind: "visit_missed",
        severity: "warning",
        status: "open",
        summary: expect.stringContaining("Nobody has come"),
        openedAt: shanghai("2026-11-26", "09:31").toISOString(),
        acknowledgedAt: null,
        closedAt: null,
        closeReason: null,
        visitId: m.missed,
      },
    ]);

    expect(log.vitals).toEqual(expectedVitals);

    // Without dates: the last 30 days, today included, in the resident's zone.
    const recent = await t.request("GET", `/v1/residents/${m.residentId}/care-log`, {
      token: m.daughter.token,
    });
    expectOk(recent);
    expect(recent.body).toMatchObject({ from: "2026-10-29", to: "2026-11-27" });
    // The 28th is after today.
    expect(recent.body.counts).toEqual({ visits: 2, alerts: 2 });

    // A read of health data is audited, and no health text reaches the logs.
    const audited = await t.db
      .selectFrom("audit_log")
      .select(["actor_user_id", "details"])
      .where("action", "=", "carelog.read")
      .where("resident_id", "=", m.residentId)
      .execute();
    expect(audited.map((a) => a.actor_user_id)).toEqual(
      expect.arrayContaining([m.son.id, m.daughter.id]),
    );
    expect(t.logText()).not.toContain("slight cough");
    expect(t.logText()).not.toContain("too tired");
  });

  it("the monthly report counts the month's visits, hours, tasks, medications, alerts and vitals; the CSV has the same figures", async () => {
    const json = await t.request(
      "GET",
      `/v1/residents/${m.residentId}/reports/monthly?month=2026-11`,
      { token: m.daughter.token },
    );
    expectOk(json);
    const r = json.body;
    const minutes = (Date.parse(m.completedOut.at) - Date.parse(m.completedIn.at)) / 60_000;
    expect(minutes).toBe(59);
    expect(r).toMatchObject({
      resident: { id: m.residentId, name: "Grandma Wang", timeZone: "Asia/Shanghai" },
      month: "2026-11",
      from: "2026-11-01",
      to: "2026-11-30",
      start: "2026-10-31T16:00:00.000Z",
      end: "2026-11-30T16:00:00.000Z",
    });
    expect(r.visits).toEqual({
      scheduled: 3,
      completed: 1,
      disputed: 0,
      missed: 1,
      cancelled: 1,
      refunded: 0,
      inProgress: 0,
      upcoming: 0,
    });
    expect(r.care).toEqual({
      visits: 1,
      minutes,
      hours: Math.round((minutes / 60) * 100) / 100,
    });
    expect(r.tasks).toEqual({ due: 3, done: 2, notDone: 1, refused: 0, notApplicable: 0, open: 0 });
    expect(r.medications).toEqual({
      due: 1,
      given: 0,
      notGiven: 0,
      refused: 1,
      notApplicable: 0,
      open: 0,
    });
    expect(r.alerts).toEqual({
      all: { total: 2, critical: 0, warning: 2, low: 0 },
      byKind: {
        visit_late: { total: 1, critical: 0, warning: 1, low: 0 },
        visit_missed: { total: 1, critical: 0, warning: 1, low: 0 },
      },
    });
    expect(r.vitals).toEqual(expectedVitals);
    // The default month is the resident's current one.
    const current = await t.request("GET", `/v1/residents/${m.residentId}/reports/monthly`, {
      token: m.son.token,
    });
    expect(current.body.visits).toEqual(r.visits);

    const csv = await t.request(
      "GET",
      `/v1/residents/${m.residentId}/reports/monthly?month=2026-11&format=csv`,
      { token: m.daughter.token },
    );
    expectOk(csv);
    expect(csv.headers.get("content-type")).toContain("text/csv");
    expect(csv.headers.get("content-disposition")).toContain("care-report-2026-11.csv");
    const [header, ...rows] = parseCsv(String(csv.body));
    expect(header).toEqual(["section", "item", "metric", "value"]);
    const cells = new Map<string, string>();
    for (const row of rows) {
      expect(row).toHaveLength(4);
      const key = `${row[0]}/${row[1]}/${row[2]}`;
      expect(cells.has(key), `${key} twice`).toBe(false);
      cells.set(key, row[3]!);
    }
    const expected = new Map<string, string>([
      ["report//residentId", m.residentId],
      ["report//month", "2026-11"],
      ["report//from", "2026-11-01"],
      ["report//to", "2026-11-30"],
      ["report//timeZone", "Asia/Shanghai"],
    ]);
    for (const section of ["visits", "care", "tasks", "medications"] as const) {
      for (const [metric, value] of Object.entries(r[section])) {
        expected.set(`${section}//${metric}`, String(value));
      }
    }
    for (const [kind, counts] of [["all", r.alerts.all], ...Object.entries(r.alerts.byKind)] as [
      string,
      Record<string, number>,
    ][]) {
      for (const [metric, value] of Object.entries(counts)) {
        expected.set(`alerts/${kind}/${metric}`, String(value));
      }
    }
    for (const v of r.vitals as typeof expectedVitals) {
      expected.set(`vitals/${v.type}/unit`, v.unit);
      expected.set(`vitals/${v.type}/count`, String(v.count));
      expected.set(`vitals/${v.type}/min`, String(v.min));
      expected.set(`vitals/${v.type}/max`, String(v.max));
      expected.set(`vitals/${v.type}/mean`, String(v.mean));
      expected.set(`vitals/${v.type}/normalMin`, String(v.normalRange.min ?? ""));
      expected.set(`vitals/${v.type}/normalMax`, String(v.normalRange.max ?? ""));
      expected.set(`vitals/${v.type}/outOfRangeBelow`, String(v.outOfRange.below));
      expected.set(`vitals/${v.type}/outOfRangeAbove`, String(v.outOfRange.above));
      expected.set(`vitals/${v.type}/outOfRangeJudged`, String(v.outOfRange.judged));
    }
    for (const [key, value] of expected) expect(cells.get(key), key).toBe(value);
    // Nothing in the CSV that the JSON does not have (the name and the time it was made aside).
    expect([...cells.keys()].filter((k) => !expected.has(k)).sort()).toEqual([
      "report//generatedAt",
      "report//residentName",
    ]);
    expect(cells.get("care//minutes")).toBe("59");
    expect(cells.get("tasks//done")).toBe("2");
    expect(cells.get("visits//missed")).toBe("1");

    // Another month: nothing happened in October but the reading just before November.
    const october = await t.request(
      "GET",
      `/v1/residents/${m.residentId}/reports/monthly?month=2026-10`,
      { token: m.daughter.token },
    );
    expect(october.body.visits.scheduled).toBe(0);
    expect(october.body.vitals).toMatchObject([{ type: "heart_rate", count: 1, max: 200 }]);
  });

  it("the EVV export has one row per verified visit with the six elements, and defuses a formula", async () => {
    const mine = evvRows(
      await evv(m.daughter.token, {
        from: "2026-11-01",
        to: "2026-11-30",
        residentId: m.residentId,
      }),
    );
    expect(mine).toEqual([
      {
        visit_id: m.completed,
        provider_id: m.provider.id,
        visit_status: "released",
        service_type: "personal_care",
        service_title: "Morning personal care",
        resident_id: m.residentId,
        resident_name: "Wang Shulan",
        date_of_service: "2026-11-24",
        worker_id: m.worker.id,
        worker_name: "Li Wei",
        start_time: m.completedIn.at,
        end_time: m.completedOut.at,
        check_in_location: "position",
        check_in_latitude: String(m.completedIn.position.latitude),
        check_in_longitude: String(m.completedIn.position.longitude),
        check_in_method: "gps",
        check_in_verified: "true",
        check_in_exception: "",
        check_in_exception_reason: "",
        check_in_offline: "false",
        check_out_location: "position",
        check_out_latitude: String(m.completedOut.position.latitude),
        check_out_longitude: String(m.completedOut.position.longitude),
        check_out_method: "gps",
        check_out_verified: "true",
        check_out_exception: "",
        check_out_exception_reason: "",
        check_out_offline: "false",
      },
    ]);

    // The provider's export: both homes' verified visits, not the missed, the cancelled or the
    // one still in progress.
    const res = await evv(m.provider.admin.token, {
      from: "2026-11-22",
      to: "2026-11-30",
      providerId: m.provider.id,
    });
    const rows = evvRows(res);
    expect(rows.map((r) => r.visit_id)).toEqual([m.completed, m.exceptional]);
    expect(rows[1]).toMatchObject({
      visit_status: "verified",
      resident_id: m.other.residentId,
      resident_name: "Chen Yumei",
      date_of_service: "2026-11-27",
      worker_id: m.other.worker.id,
      worker_name: `'${FORMULA_NAME}`,
      start_time: m.exceptionalIn,
      end_time: m.exceptionalOut,
      check_in_location: "no position",
      check_in_latitude: "",
      check_in_longitude: "",
      check_in_method: "none",
      check_in_verified: "false",
      check_in_exception: "no_proof",
      check_in_exception_reason: "Phone had no signal upstairs",
      check_in_offline: "true",
      check_out_location: "no position",
      check_out_method: "none",
      check_out_verified: "false",
      check_out_exception: "no_proof",
      check_out_exception_reason: "Still no signal",
      check_out_offline: "false",
    });
    // No cell a spreadsheet would run: the name is quoted text behind an apostrophe.
    for (const row of parseCsv(String(res.body))) {
      for (const cell of row) expect(cell).not.toMatch(/^[=+@]/);
    }
    expect(String(res.body)).toContain(`"'=HYPERLINK(""http://evil.example"",""click"")"`);

    // The dates select the visits: from the 25th, only the other home's.
    const later = evvRows(
      await evv(operator.token, {
        from: "2026-11-25",
        to: "2026-11-30",
        providerId: m.provider.id,
      }),
    );
    expect(later.map((r) => r.visit_id)).toEqual([m.exceptional]);
    const audited = await t.db
      .selectFrom("audit_log")
      .select("entity_id")
      .where("action", "=", "evv.export")
      .execute();
    expect(audited.map((a) => a.entity_id)).toEqual(
      expect.arrayContaining([m.residentId, m.provider.id]),
    );
  });

  it("who may read: the family reads the care log, only primaries export by resident; others see nothing", async () => {
    const stranger = await signUpFamily(t, { displayName: "Stranger" });
    const otherProvider = await verifiedProvider(t, operator.token);
    const careLog = `/v1/residents/${m.residentId}/care-log`;
    const monthly = `/v1/residents/${m.residentId}/reports/monthly?month=2026-11`;
    const byResident = { from: "2026-11-01", to: "2026-11-30", residentId: m.residentId };
    const byProvider = { from: "2026-11-01", to: "2026-11-30", providerId: m.provider.id };

    for (const token of [m.son.token, m.daughter.token, operator.token]) {
      expect((await t.request("GET", careLog, { token })).status).toBe(200);
      expect((await t.request("GET", monthly, { token })).status).toBe(200);
    }
    for (const token of [stranger.token, m.worker.user.token, m.provider.admin.token]) {
      const res = await t.request("GET", careLog, { token });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe("not_found");
      expect((await t.request("GET", monthly, { token })).status).toBe(404);
    }
    // Another family's primary sees nothing of this resident.
    expect((await t.request("GET", careLog, { token: m.other.daughter.token })).status).toBe(404);

    const member = await evv(m.son.token, byResident);
    expect(member.status).toBe(403);
    expect(member.body.error.code).toBe("forbidden");
    expect((await evv(stranger.token, byResident)).status).toBe(404);
    expect((await evv(m.provider.admin.token, byResident)).status).toBe(404);
    expect(evvRows(await evv(operator.token, byResident))).toHaveLength(1);

    expect((await evv(m.daughter.token, byProvider)).status).toBe(404);
    expect((await evv(otherProvider.admin.token, byProvider)).status).toBe(404);
    expect((await evv(stranger.token, byProvider)).status).toBe(404);
    expect(evvRows(await evv(operator.token, byProvider))).toHaveLength(2);
    expect(
      (await evv(operator.token, { ...byProvider, providerId: "no-such-provider" })).status,
    ).toBe(404);
    // Unauthenticated: nothing at all.
    expect((await t.request("GET", careLog)).status).toBe(401);
  });

  it("the three endpoints are in the OpenAPI document, the CSV ones with their media type", async () => {
    const doc = (await t.request("GET", "/openapi.json")).body;
    expect(doc.paths["/v1/residents/{residentId}/care-log"]?.get).toBeDefined();
    const monthly = doc.paths["/v1/residents/{residentId}/reports/monthly"]?.get;
    expect(Object.keys(monthly.responses["200"].content)).toEqual(
      expect.arrayContaining(["application/json", "text/csv"]),
    );
    const export_ = doc.paths["/v1/evv/visits.csv"]?.get;
    expect(Object.keys(export_.responses["200"].content)).toEqual(["text/csv"]);
    expect(export_.description).toContain("check_in_exception_reason");
  });

  it("bad input is a 400 validation_failed naming the field", async () => {
    const expect400 = async (path: string, field: string) => {
      const res = await t.request("GET", path, { token: operator.token });
      expect(res.status, path).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
      expect(
        res.body.error.details.issues.map((i: { path: string }) => i.path),
        path,
      ).toContain(field);
    };
    const r = m.residentId;
    const p = m.provider.id;
    await expect400(`/v1/residents/${r}/reports/monthly?month=2026-13`, "query.month");
    await expect400(`/v1/residents/${r}/reports/monthly?month=2026-1`, "query.month");
    await expect400(`/v1/residents/${r}/reports/monthly?format=xlsx`, "query.format");
    await expect400(`/v1/residents/${r}/care-log?from=2026-11-30&to=2026-11-01`, "query.to");
    await expect400(`/v1/residents/${r}/care-log?from=2025-01-01&to=2026-01-02`, "query.to");
    await expect400(`/v1/residents/${r}/care-log?from=2026-02-30`, "query.from");
    await expect400(`/v1/evv/visits.csv?from=2026-11-30&to=2026-11-01&providerId=${p}`, "query.to");
    await expect400(`/v1/evv/visits.csv?from=2025-01-01&to=2026-01-02&providerId=${p}`, "query.to");
    await expect400(
      `/v1/evv/visits.csv?from=2026-11-01&to=2026-11-30&providerId=${p}&residentId=${r}`,
      "query.providerId",
    );
    await expect400("/v1/evv/visits.csv?from=2026-11-01&to=2026-11-30", "query.providerId");
    await expect400(`/v1/evv/visits.csv?to=2026-11-30&providerId=${p}`, "query.from");
    // A whole year is fine.
    const year = await t.request(
      "GET",
      `/v1/residents/${r}/care-log?from=2026-01-01&to=2026-12-31`,
      { token: operator.token },
    );
    expect(year.status).toBe(200);
    expect(year.body.counts.visits).toBe(3);
  });
});
