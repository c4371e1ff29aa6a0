// The vitals API: the latest reading of each type, series for charts (raw and bucketed in UTC),
// the FHIR R4 export, who may read them, the audit of every read, and the retention job that
// rolls old readings up into hourly summaries that the series keeps answering from.
import { afterAll, beforeAll, describe, expect, it, test } from "vitest";
import { rollUpOldReadings } from "../src/vitals/rollup";
import { MAX_RAW_POINTS } from "../src/vitals/vitals.schemas";
import { connectDevice, publish, registerDevice, telemetry } from "./helpers/devices.factory";
import {
  createOperator,
  createUserWithRoles,
  login,
  type SignedIn,
  signUpFamily,
  unique,
} from "./helpers/factories";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { type ApiResponse, createTestApp, type TestApp } from "./helpers/test-app";

const DAY = 86_400_000;
const UCUM = "http://unitsofmeasure.org";
const LOINC = "http://loinc.org";

let t: TestApp;
let operator: SignedIn;
let daughter: SignedIn;

beforeAll(async () => {
  t = await createTestApp({ mqtt: true });
  operator = await createOperator(t);
  daughter = await signUpFamily(t);
});
afterAll(() => t.close());

/** A resident registered by a family member (who becomes its primary), or by an operator. */
async function newResident(app = t, token = daughter.token, asFamily = true) {
  return (await createResident(app, token, asFamily ? { relationship: "daughter" } : {})).id;
}

/** Readings written straight to the table, for tests about querying rather than ingest. */
async function insertReadings(
  app: TestApp,
  residentId: string,
  rows: [type: string, measuredAt: string, value: number][],
  deviceId = "dev-direct",
) {
  const unit: Record<string, string> = {
    heart_rate: "/min",
    systolic: "mm[Hg]",
    diastolic: "mm[Hg]",
    spo2: "%",
  };
  const values = rows.map(([type, measuredAt, value]) => ({
    resident_id: residentId,
    device_id: deviceId,
    msg_id: unique("m"),
    type,
    value,
    unit: unit[type] ?? "?",
    measured_at: measuredAt,
    received_at: measuredAt,
  }));
  for (let i = 0; i < values.length; i += 500) {
    await app.db
      .insertInto("readings")
      .values(values.slice(i, i + 500))
      .execute();
  }
}

const series = (residentId: string, query: Record<string, string>, token = daughter.token) =>
  t.request("GET", `/v1/residents/${residentId}/vitals/series?${new URLSearchParams(query)}`, {
    token,
  });

function issuePaths(res: ApiResponse): string[] {
  return res.body.error.details.issues.map((i: { path: string }) => i.path);
}

describe("latest", () => {
  it("gives the newest reading of each type sent over MQTT, blood pressure as its two types", async () => {
    const residentId = await newResident();
    const device = await registerDevice(t, daughter.token, residentId, { kind: "hub" });
    const client = await connectDevice(t, device);
    const earlier = t.clock.now().getTime() - 10 * 60_000;
    await publish(
      t,
      client,
      `${device.topicRoot}telemetry`,
      telemetry(
        t,
        "m-1",
        [
          { type: "heart_rate", unit: "bpm", value: 70 },
          { type: "blood_pressure", unit: "mmHg", systolic: 131, diastolic: 86 },
        ],
        earlier,
      ),
      { qos: 1 },
    );
    await publish(
      t,
      client,
      `${device.topicRoot}telemetry`,
      telemetry(t, "m-2", [
        { type: "heart_rate", unit: "/min", value: 76 },
        { type: "body_temperature", unit: "°F", value: 98.6 },
      ]),
      { qos: 1 },
    );
    await client.endAsync();

    const res = await t.request("GET", `/v1/residents/${residentId}/vitals/latest`, {
      token: daughter.token,
    });
    expect(res.status).toBe(200);
    const now = t.clock.now().toISOString();
    const at = new Date(earlier).toISOString();
    const byType = Object.fromEntries(res.body.items.map((i: { type: string }) => [i.type, i]));
    expect(byType).toEqual({
      heart_rate: {
        type: "heart_rate",
        value: 76,
        unit: "/min",
        measuredAt: now,
        deviceId: device.id,
      },
      systolic: {
        type: "systolic",
        value: 131,
        unit: "mm[Hg]",
        measuredAt: at,
        deviceId: device.id,
      },
      diastolic: {
        type: "diastolic",
        value: 86,
        unit: "mm[Hg]",
        measuredAt: at,
        deviceId: device.id,
      },
      body_temperature: {
        type: "body_temperature",
        value: 37,
        unit: "Cel",
        measuredAt: now,
        deviceId: device.id,
      },
    });
    expect(res.body.residentId).toBe(residentId);
  });

  it("is an empty list for a resident without readings", async () => {
    const residentId = await newResident();
    const res = await t.request("GET", `/v1/residents/${residentId}/vitals/latest`, {
      token: daughter.token,
    });
    expect(res.body).toEqual({ residentId, items: [] });
  });
});

describe("series", () => {
  let residentId: string;
  beforeAll(async () => {
    residentId = await newResident();
    await insertReadings(t, residentId, [
      ["heart_rate", "2026-11-20T10:00:10.000Z", 60],
      ["heart_rate", "2026-11-20T10:00:50.000Z", 70],
      ["heart_rate", "2026-11-20T10:05:00.000Z", 80],
      ["heart_rate", "2026-11-20T11:30:00.000Z", 90],
      ["heart_rate", "2026-11-21T08:00:00.000Z", 101],
      // Not heart rate, or not this resident: never in the series below.
      ["systolic", "2026-11-20T10:00:10.000Z", 140],
    ]);
    await insertReadings(t, await newResident(), [["heart_rate", "2026-11-20T10:00:30.000Z", 200]]);
  });

  const range = { type: "heart_rate", from: "2026-11-20T00:00:00Z", to: "2026-11-22T00:00:00Z" };

  it("raw: every reading in [from, to), oldest first, with its device", async () => {
    const res = await series(residentId, range);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      residentId,
      type: "heart_rate",
      unit: "/min",
      bucket: "raw",
      from: "2026-11-20T00:00:00.000Z",
      to: "2026-11-22T00:00:00.000Z",
      buckets: [],
    });
    expect(res.body.points).toEqual([
      { measuredAt: "2026-11-20T10:00:10.000Z", value: 60, deviceId: "dev-direct" },
      { measuredAt: "2026-11-20T10:00:50.000Z", value: 70, deviceId: "dev-direct" },
      { measuredAt: "2026-11-20T10:05:00.000Z", value: 80, deviceId: "dev-direct" },
      { measuredAt: "2026-11-20T11:30:00.000Z", value: 90, deviceId: "dev-direct" },
      { measuredAt: "2026-11-21T08:00:00.000Z", value: 101, deviceId: "dev-direct" },
    ]);
    // `to` is exclusive; a zone other than UTC names the same instant.
    const narrow = await series(residentId, {
      ...range,
      from: "2026-11-20T18:00:50+08:00",
      to: "2026-11-20T11:30:00Z",
    });
    expect(narrow.body.points.map((p: { value: number }) => p.value)).toEqual([70, 80]);
  });

  test.each([
    [
      "minute",
      [
        { start: "2026-11-20T10:00:00.000Z", min: 60, mean: 65, max: 70, count: 2, sum: 130 },
        { start: "2026-11-20T10:05:00.000Z", min: 80, mean: 80, max: 80, count: 1, sum: 80 },
        { start: "2026-11-20T11:30:00.000Z", min: 90, mean: 90, max: 90, count: 1, sum: 90 },
        { start: "2026-11-21T08:00:00.000Z", min: 101, mean: 101, max: 101, count: 1, sum: 101 },
      ],
    ],
    [
      "hour",
      [
        { start: "2026-11-20T10:00:00.000Z", min: 60, mean: 70, max: 80, count: 3, sum: 210 },
        { start: "2026-11-20T11:00:00.000Z", min: 90, mean: 90, max: 90, count: 1, sum: 90 },
        { start: "2026-11-21T08:00:00.000Z", min: 101, mean: 101, max: 101, count: 1, sum: 101 },
      ],
    ],
    [
      "day",
      [
        { start: "2026-11-20T00:00:00.000Z", min: 60, mean: 75, max: 90, count: 4, sum: 300 },
        { start: "2026-11-21T00:00:00.000Z", min: 101, mean: 101, max: 101, count: 1, sum: 101 },
      ],
    ],
  ])("bucket=%s: min, mean, max and count per UTC bucket", async (bucket, expected) => {
    const res = await series(residentId, { ...range, bucket });
    expect(res.status).toBe(200);
    expect(res.body.points).toEqual([]);
    expect(res.body.buckets).toEqual(expected.map((b) => ({ ...b, size: bucket })));
  });

  it("a mean that does not come out even is rounded, not truncated", async () => {
    const id = await newResident();
    await insertReadings(t, id, [
      ["spo2", "2026-11-21T01:00:00.000Z", 97],
      ["spo2", "2026-11-21T01:10:00.000Z", 96],
      ["spo2", "2026-11-21T01:20:00.000Z", 96],
    ]);
    const res = await series(id, { ...range, type: "spo2", bucket: "hour" });
    expect(res.body.buckets[0]).toMatchObject({ min: 96, max: 97, mean: 96.333, count: 3 });
  });

  it(`refuses more than ${MAX_RAW_POINTS} raw points, pointing to a coarser bucket`, async () => {
    const id = await newResident();
    const start = Date.parse("2026-11-21T00:00:00Z");
    await insertReadings(
      t,
      id,
      Array.from({ length: MAX_RAW_POINTS + 1 }, (_, i) => [
        "heart_rate",
        new Date(start + i * 5_000).toISOString(),
        60 + (i % 20),
      ]),
    );
    const res = await series(id, range);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.message).toMatch(/bucket=minute/);
    expect(issuePaths(res)).toEqual(["query.bucket"]);
    const minutes = await series(id, { ...range, bucket: "minute" });
    expect(minutes.status).toBe(200);
    expect(minutes.body.buckets.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(
      MAX_RAW_POINTS + 1,
    );
  });
});

describe("bad input names the field", () => {
  let residentId: string;
  beforeAll(async () => {
    residentId = await newResident();
  });
  const ok = { type: "heart_rate", from: "2026-11-20T00:00:00Z", to: "2026-11-21T00:00:00Z" };

  test.each([
    ["blood_pressure is two types", { ...ok, type: "blood_pressure" }, "query.type", /systolic/],
    ["an unknown type", { ...ok, type: "mood" }, "query.type", /heart_rate/],
    ["a missing type", { from: ok.from, to: ok.to }, "query.type", /./],
    ["from equal to to", { ...ok, to: ok.from }, "query.to", /after from/],
    ["from after to", { ...ok, from: ok.to, to: ok.from }, "query.to", /after from/],
    ["a date without a time", { ...ok, from: "2026-11-20" }, "query.from", /ISO-8601/],
    ["not a date", { ...ok, to: "yesterday" }, "query.to", /ISO-8601/],
    ["a date-time without a zone", { ...ok, from: "2026-11-20T00:00:00" }, "query.from", /zone/],
    ["an unknown bucket", { ...ok, bucket: "week" }, "query.bucket", /minute/],
    [
      "40 days of raw readings",
      { ...ok, from: "2026-10-01T00:00:00Z", to: "2026-11-10T00:00:00Z" },
      "query.to",
      /at most 31/,
    ],
    [
      "8 days of minutes",
      { ...ok, from: "2026-11-01T00:00:00Z", to: "2026-11-09T00:00:00Z", bucket: "minute" },
      "query.to",
      /at most 7/,
    ],
    [
      "two years of hours",
      { ...ok, from: "2024-11-01T00:00:00Z", bucket: "hour" },
      "query.to",
      /at most 366/,
    ],
  ])("series: %s is a 400", async (_name, query, path, message) => {
    const res = await series(residentId, query as Record<string, string>);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(issuePaths(res)).toEqual([path]);
    expect(res.body.error.details.issues[0].message).toMatch(message);
  });

  test.each([
    [
      "a range over 92 days",
      { from: "2026-01-01T00:00:00Z", to: "2026-11-01T00:00:00Z" },
      "query.to",
    ],
    ["from after to", { from: "2026-11-02T00:00:00Z", to: "2026-11-01T00:00:00Z" }, "query.to"],
    ["no from", { to: "2026-11-01T00:00:00Z" }, "query.from"],
  ])("FHIR export: %s is a 400", async (_name, query, path) => {
    const res = await t.request(
      "GET",
      `/v1/residents/${residentId}/vitals/fhir?${new URLSearchParams(query)}`,
      { token: daughter.token },
    );
    expect(res.status).toBe(400);
    expect(issuePaths(res)).toEqual([path]);
  });
});

describe("FHIR export", () => {
  let residentId: string;
  let deviceId: string;
  let fhir: (token?: string) => Promise<ApiResponse>;
  const first = "2026-11-22T08:40:00.000Z";

  beforeAll(async () => {
    residentId = await newResident();
    const device = await registerDevice(t, daughter.token, residentId, { kind: "hub" });
    deviceId = device.id;
    const client = await connectDevice(t, device);
    await publish(
      t,
      client,
      `${device.topicRoot}telemetry`,
      telemetry(
        t,
        "bp-1",
        [
          { type: "blood_pressure", unit: "mmHg", systolic: 132, diastolic: 84 },
          { type: "heart_rate", unit: "bpm", value: 71 },
          { type: "steps", value: 1200 },
        ],
        first,
      ),
      { qos: 1 },
    );
    await publish(
      t,
      client,
      `${device.topicRoot}telemetry`,
      telemetry(t, "bp-2", [
        { type: "blood_pressure", unit: "mm[Hg]", systolic: 121, diastolic: 79 },
        { type: "body_temperature", unit: "°F", value: 98.6 },
        { type: "blood_glucose", unit: "mmol/L", value: 5.5 },
        { type: "spo2", unit: "%", value: 97 },
        { type: "weight", unit: "kg", value: 61.2 },
        { type: "respiratory_rate", unit: "/min", value: 15 },
      ]),
      { qos: 1 },
    );
    await client.endAsync();
    fhir = (token = daughter.token) =>
      t.request(
        "GET",
        `/v1/residents/${residentId}/vitals/fhir?from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z`,
        { token },
      );
  });

  it("is a Bundle of vital-sign Observations with LOINC codes and UCUM quantities", async () => {
    const res = await fhir();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/fhir\+json/);
    const bundle = res.body;
    expect(bundle).toMatchObject({ resourceType: "Bundle", type: "collection" });
    const observations = bundle.entry.map((e: { resource: any }) => e.resource);
    // Two blood pressures as two panels, not four rows; steps are not a vital sign.
    expect(observations).toHaveLength(8);
    for (const [i, o] of observations.entries()) {
      expect(o.resourceType).toBe("Observation");
      expect(o.status).toBe("final");
      expect(bundle.entry[i].fullUrl).toBe(`urn:uuid:${o.id}`);
      expect(o.category[0].coding[0]).toMatchObject({
        system: "http://terminology.hl7.org/CodeSystem/observation-category",
        code: "vital-signs",
      });
      expect(o.code.coding[0].system).toBe(LOINC);
      expect(o.subject).toEqual({ reference: `Patient/${residentId}` });
      expect(o.device).toEqual({ reference: `Device/${deviceId}` });
    }
    const byCode = Object.fromEntries(
      observations.map((o: any) => [`${o.code.coding[0].code}@${o.effectiveDateTime}`, o]),
    );
    const now = t.clock.now().toISOString();
    const quantity = (o: any) => o.valueQuantity;
    expect(quantity(byCode[`8867-4@${first}`])).toEqual({
      value: 71,
      unit: "beats/minute",
      system: UCUM,
      code: "/min",
    });
    expect(quantity(byCode[`8310-5@${now}`])).toMatchObject({
      value: 37,
      system: UCUM,
      code: "Cel",
    });
    expect(quantity(byCode[`41653-7@${now}`])).toMatchObject({ value: 99.088, code: "mg/dL" });
    expect(quantity(byCode[`2708-6@${now}`])).toMatchObject({ value: 97, code: "%" });
    expect(quantity(byCode[`29463-7@${now}`])).toMatchObject({ value: 61.2, code: "kg" });
    expect(quantity(byCode[`9279-1@${now}`])).toMatchObject({ value: 15, code: "/min" });
    expect(observations.some((o: any) => o.code.coding[0].code === "55423-8")).toBe(false);
  });

  it("pairs each blood pressure's systolic and diastolic by its message into one 85354-9 panel", async () => {
    const observations = (await fhir()).body.entry.map((e: { resource: any }) => e.resource);
    const panels = observations.filter((o: any) => o.code.coding[0].code === "85354-9");
    const summary = panels.map((o: any) => ({
      at: o.effectiveDateTime,
      valueQuantity: o.valueQuantity,
      components: o.component.map((c: any) => [
        c.code.coding[0].system,
        c.code.coding[0].code,
        c.valueQuantity,
      ]),
    }));
    const mmHg = (value: number) => ({ value, unit: "mmHg", system: UCUM, code: "mm[Hg]" });
    expect(summary).toEqual([
      {
        at: first,
        valueQuantity: undefined,
        components: [
          [LOINC, "8480-6", mmHg(132)],
          [LOINC, "8462-4", mmHg(84)],
        ],
      },
      {
        at: t.clock.now().toISOString(),
        valueQuantity: undefined,
        components: [
          [LOINC, "8480-6", mmHg(121)],
          [LOINC, "8462-4", mmHg(79)],
        ],
      },
    ]);
  });

  it("gives each Observation the same id every time it is exported", async () => {
    const ids = async () =>
      (await fhir()).body.entry.map((e: { resource: { id: string } }) => e.resource.id);
    const once = await ids();
    expect(new Set(once).size).toBe(once.length);
    expect(await ids()).toEqual(once);
  });
});

describe("who may read vitals", () => {
  const actors = {} as Record<"primary" | "member" | "self" | "stranger" | "worker", SignedIn>;
  let residentId: string;

  beforeAll(async () => {
    actors.primary = await signUpFamily(t);
    actors.member = await signUpFamily(t);
    actors.stranger = await signUpFamily(t);
    actors.worker = await createUserWithRoles(t, operator.token, ["worker"]);
    residentId = await newResident(t, actors.primary.token);
    await joinCircle(t, actors.primary.token, residentId, actors.member);
    const email = `${unique("grandma")}@example.com`;
    await t.request("POST", `/v1/residents/${residentId}/account`, {
      token: operator.token,
      body: { email, password: "grandma's password" },
    });
    actors.self = await login(t, email, "grandma's password");
    await insertReadings(t, residentId, [["heart_rate", "2026-11-22T08:00:00.000Z", 72]]);
  });

  const paths = {
    latest: (id: string) => `/v1/residents/${id}/vitals/latest`,
    series: (id: string) =>
      `/v1/residents/${id}/vitals/series?type=heart_rate&from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z`,
    fhir: (id: string) =>
      `/v1/residents/${id}/vitals/fhir?from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z`,
  };
  const cases = Object.keys(paths).flatMap((view) =>
    (
      [
        ["operator", 200],
        ["primary", 200],
        ["member", 200],
        ["self", 200],
        ["stranger", 404],
        ["worker", 404],
        ["anonymous", 401],
      ] as const
    ).map(([who, status]) => [view as keyof typeof paths, who, status] as const),
  );

  test.each(cases)("%s: %s gets %i", async (view, who, status) => {
    const token =
      who === "anonymous" ? undefined : who === "operator" ? operator.token : actors[who].token;
    const res = await t.request("GET", paths[view](residentId), token ? { token } : {});
    expect(res.status).toBe(status);
    if (status === 404) {
      // Existence does not leak: the same answer as for a resident that does not exist.
      expect(res.body.error.code).toBe("not_found");
      const none = await t.request("GET", paths[view]("no-such-resident"), { token });
      expect(none.body.error.message).toBe(res.body.error.message);
    }
  });

  it("every read is audited as vitals.read with what was read; a refused one is not", async () => {
    const before = t.clock.now().toISOString();
    t.clock.advance(1_000);
    const res = await t.request("GET", paths.series(residentId), { token: actors.member.token });
    expect(res.status).toBe(200);
    await t.request("GET", paths.series(residentId), { token: actors.stranger.token });
    const entries = await t.db
      .selectFrom("audit_log")
      .selectAll()
      .where("action", "=", "vitals.read")
      .where("at", ">", before)
      .execute();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      actor_user_id: actors.member.id,
      entity_type: "resident",
      entity_id: residentId,
      resident_id: residentId,
      request_id: res.headers.get("x-request-id"),
    });
    expect(JSON.parse(entries[0]!.details!)).toEqual({
      view: "series",
      type: "heart_rate",
      bucket: "raw",
      from: "2026-11-22T00:00:00.000Z",
      to: "2026-11-23T00:00:00.000Z",
    });
    // The audit trail holds what was asked, never the values.
    expect(entries[0]!.details).not.toContain("72");

    for (const view of ["latest", "fhir"] as const) {
      const r = await t.request("GET", paths[view](residentId), { token: actors.self.token });
      const entry = await t.db
        .selectFrom("audit_log")
        .selectAll()
        .where("action", "=", "vitals.read")
        .where("request_id", "=", r.headers.get("x-request-id"))
        .executeTakeFirstOrThrow();
      expect(entry.actor_user_id).toBe(actors.self.id);
      expect(JSON.parse(entry.details!).view).toBe(view);
    }
  });
});

describe("retention", () => {
  let r: TestApp;
  let op: SignedIn;
  beforeAll(async () => {
    r = await createTestApp();
    op = await createOperator(r);
  });
  afterAll(() => r.close());

  const rollups = (residentId: string) =>
    r.db
      .withTables<{ reading_rollups: Record<string, any> }>()
      .selectFrom("reading_rollups")
      .selectAll()
      .where("resident_id", "=", residentId)
      .orderBy("type")
      .orderBy("hour_start")
      .execute();
  const raw = (residentId: string) =>
    r.db
      .selectFrom("readings")
      .select(["type", "measured_at"])
      .where("resident_id", "=", residentId)
      .orderBy("type")
      .orderBy("measured_at")
      .execute();

  it("a durable job rolls readings past the retention into hourly rows and deletes them; charts keep working", async () => {
    const residentId = await newResident(r, op.token, false);
    await insertReadings(r, residentId, [
      ["heart_rate", "2026-11-22T06:10:00.000Z", 60],
      ["heart_rate", "2026-11-22T06:20:00.000Z", 80],
      ["heart_rate", "2026-11-22T06:50:00.000Z", 73],
      ["heart_rate", "2026-11-22T07:05:00.000Z", 70],
      // The newest heart rate: its hour stays raw, so "latest" still has it.
      ["heart_rate", "2026-11-22T08:30:00.000Z", 90],
      ["spo2", "2026-11-22T06:15:00.000Z", 95],
      ["spo2", "2026-11-22T06:45:00.000Z", 98],
      ["spo2", "2026-11-22T08:45:00.000Z", 97],
    ]);
    const before = await raw(residentId);

    // 31 days on, the default retention (90 days) keeps everything raw.
    r.clock.advance(31 * DAY);
    expect(await r.scheduler.drain()).toBeGreaterThan(0);
    expect(await raw(residentId)).toEqual(before);
    expect(await rollups(residentId)).toEqual([]);

    // An operator shortens it to 30 days; the next hourly run rolls up.
    op = await login(r, op.email);
    const patched = await r.request("PATCH", "/v1/settings", {
      token: op.token,
      body: { "vitals.raw_retention_days": 30 },
    });
    expect(patched.status).toBe(200);
    r.clock.advance(61 * 60_000);
    expect(await r.scheduler.drain()).toBeGreaterThan(0);

    expect(await raw(residentId)).toEqual([
      { type: "heart_rate", measured_at: "2026-11-22T08:30:00.000Z" },
      { type: "spo2", measured_at: "2026-11-22T08:45:00.000Z" },
    ]);
    const rows = (await rollups(residentId)).map((x) => ({
      ...x,
      reading_count: Number(x.reading_count),
      value_sum: Number(x.value_sum),
      value_min: Number(x.value_min),
      value_max: Number(x.value_max),
    }));
    const hour = (
      type: string,
      h: string,
      unit: string,
      n: number,
      sum: number,
      min: number,
      max: number,
    ) => ({
      resident_id: residentId,
      type,
      hour_start: `2026-11-22T${h}:00:00.000Z`,
      unit,
      reading_count: n,
      value_sum: sum,
      value_min: min,
      value_max: max,
    });
    expect(rows).toEqual([
      hour("heart_rate", "06", "/min", 3, 213, 60, 80),
      hour("heart_rate", "07", "/min", 1, 70, 70, 70),
      hour("spo2", "06", "%", 2, 193, 95, 98),
    ]);

    const query = (bucket: string) =>
      r.request(
        "GET",
        `/v1/residents/${residentId}/vitals/series?type=heart_rate&from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z&bucket=${bucket}`,
        { token: op.token },
      );
    const hours = await query("hour");
    expect(hours.status).toBe(200);
    expect(hours.body.buckets).toEqual([
      {
        start: "2026-11-22T06:00:00.000Z",
        size: "hour",
        min: 60,
        mean: 71,
        max: 80,
        sum: 213,
        count: 3,
      },
      {
        start: "2026-11-22T07:00:00.000Z",
        size: "hour",
        min: 70,
        mean: 70,
        max: 70,
        sum: 70,
        count: 1,
      },
      {
        start: "2026-11-22T08:00:00.000Z",
        size: "hour",
        min: 90,
        mean: 90,
        max: 90,
        sum: 90,
        count: 1,
      },
    ]);
    const days = await query("day");
    expect(days.body.buckets).toEqual([
      {
        start: "2026-11-22T00:00:00.000Z",
        size: "day",
        min: 60,
        mean: 74.6,
        max: 90,
        sum: 373,
        count: 5,
      },
    ]);
    // Raw and minute views answer the rolled-up hours with what is left: the hour.
    const rawView = await query("raw");
    expect(rawView.body.points).toEqual([
      { measuredAt: "2026-11-22T08:30:00.000Z", value: 90, deviceId: "dev-direct" },
    ]);
    expect(rawView.body.buckets.map((b: any) => [b.start, b.size, b.count])).toEqual([
      ["2026-11-22T06:00:00.000Z", "hour", 3],
      ["2026-11-22T07:00:00.000Z", "hour", 1],
    ]);
    const minutes = await query("minute");
    expect(minutes.body.buckets.map((b: any) => [b.start, b.size, b.count])).toEqual([
      ["2026-11-22T06:00:00.000Z", "hour", 3],
      ["2026-11-22T07:00:00.000Z", "hour", 1],
      ["2026-11-22T08:30:00.000Z", "minute", 1],
    ]);
    const latest = await r.request("GET", `/v1/residents/${residentId}/vitals/latest`, {
      token: op.token,
    });
    expect(latest.body.items.map((i: any) => [i.type, i.value])).toEqual([
      ["heart_rate", 90],
      ["spo2", 97],
    ]);

    // The chain goes on: the next run is scheduled an hour later.
    const next = await r.db
      .selectFrom("jobs")
      .select(["due_at", "status"])
      .where("kind", "=", "vitals.rollup")
      .where("status", "=", "pending")
      .executeTakeFirstOrThrow();
    expect(Date.parse(next.due_at)).toBe(r.clock.now().getTime() + 3_600_000);
  });

  it("works in small transactions: an hour split across chunks and runs merges exactly", async () => {
    op = await login(r, op.email);
    const residentId = await newResident(r, op.token, false);
    const now = r.clock.now();
    const hourStart = new Date(Math.floor((now.getTime() - 40 * DAY) / 3_600_000) * 3_600_000);
    const at = (m: number) => new Date(hourStart.getTime() + m * 60_000).toISOString();
    await insertReadings(r, residentId, [
      ["heart_rate", at(1), 61],
      ["heart_rate", at(2), 59],
      ["heart_rate", at(3), 75],
      ["heart_rate", at(4), 66],
      ["heart_rate", at(70), 80],
      ["heart_rate", now.toISOString(), 72],
    ]);
    const first = await rollUpOldReadings(r.db, now, {
      retentionDays: 30,
      chunkSize: 2,
      budgetMs: 0,
    });
    expect(first).toMatchObject({ finished: false });
    const second = await rollUpOldReadings(r.db, now, { retentionDays: 30, chunkSize: 2 });
    expect(second).toMatchObject({ finished: true });
    expect(first.readings + second.readings).toBe(5);
    expect(second.chunks).toBeGreaterThanOrEqual(2);
    const rows = await rollups(residentId);
    expect(
      rows.map((x) => [
        x.hour_start,
        Number(x.reading_count),
        Number(x.value_sum),
        Number(x.value_min),
        Number(x.value_max),
      ]),
    ).toEqual([
      [at(0), 4, 261, 59, 75],
      [at(60), 1, 80, 80, 80],
    ]);
    expect(await raw(residentId)).toEqual([{ type: "heart_rate", measured_at: now.toISOString() }]);
    // Nothing left to do: a further run changes nothing.
    expect(await rollUpOldReadings(r.db, now, { retentionDays: 30 })).toMatchObject({
      readings: 0,
      finished: true,
    });
    expect(await rollups(residentId)).toEqual(rows);
  });
});

test("the OpenAPI document describes the vitals routes, UTC buckets and the FHIR media type", async () => {
  const doc = (await t.request("GET", "/openapi.json")).body;
  const seriesOp = doc.paths["/v1/residents/{residentId}/vitals/series"].get;
  expect(seriesOp.description).toMatch(/aligned in UTC/);
  expect(seriesOp.parameters.map((p: { name: string }) => p.name)).toEqual(
    expect.arrayContaining(["type", "from", "to", "bucket"]),
  );
  expect(doc.paths["/v1/residents/{residentId}/vitals/latest"].get).toBeDefined();
  expect(
    doc.paths["/v1/residents/{residentId}/vitals/fhir"].get.responses["200"].content,
  ).toHaveProperty(["application/fhir+json"]);
});
