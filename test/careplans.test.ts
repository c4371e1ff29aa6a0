import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

async function familyWithMother() {
  const daughter = await signUpFamily(t, { displayName: "Li Mei" });
  const mother = await createResident(t, daughter.token, { relationship: "daughter" });
  return { daughter, mother };
}

async function currentPlan(token: string, residentId: string) {
  const res = await t.request("GET", `/v1/residents/${residentId}/care-plan`, { token });
  expect(res.status).toBe(200);
  return res.body;
}

describe("care plans", () => {
  it("a new resident is protected by default vital rules before anyone edits the plan", async () => {
    const { daughter, mother } = await familyWithMother();
    const plan = await currentPlan(daughter.token, mother.id);
    expect(plan.version).toBe(1);
    expect(plan.summary).toBe("default plan");
    const rules = plan.plan.vitalRules;
    expect(Object.keys(rules).sort()).toEqual(
      [
        "blood_glucose",
        "body_temperature",
        "diastolic",
        "heart_rate",
        "respiratory_rate",
        "spo2",
        "systolic",
        "weight",
      ].sort(),
    );
    expect(rules.spo2).toMatchObject({
      enabled: true,
      unit: "%",
      normal: { min: 92 },
      critical: { min: 88 },
    });
    expect(rules.heart_rate).toMatchObject({ enabled: true, unit: "/min" });
    expect(plan.plan.nightWindow).toEqual({ start: "22:00", end: "07:00" });
    expect(plan.plan.noMotionHours).toBeGreaterThan(0);
    const defaults = await t.request("GET", "/v1/care-plan-defaults", { token: daughter.token });
    expect(defaults.body.vitalRules).toEqual(rules);
  });

  it("every change makes a new version; the history shows who changed which sections and when", async () => {
    const { daughter, mother } = await familyWithMother();
    const v1 = await currentPlan(daughter.token, mother.id);
    const plan = structuredClone(v1.plan);
    plan.tasks.push({
      id: "walk",
      title: "Short walk",
      schedule: { kind: "daily", times: ["10:00"] },
    });
    plan.medications.push({
      id: "metformin",
      name: "Metformin",
      dose: "500 mg",
      times: ["08:00", "20:00"],
    });
    const saved = await t.request("PUT", `/v1/residents/${mother.id}/care-plan`, {
      token: daughter.token,
      body: { baseVersion: 1, plan, summary: "after the GP visit" },
    });
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({
      version: 2,
      changes: ["tasks", "medications"],
      summary: "after the GP visit",
    });
    expect(saved.body.plan.tasks[0]).toEqual({
      id: "walk",
      title: "Short walk",
      instructions: null,
      schedule: { kind: "daily", times: ["10:00"] },
    });

    t.clock.advance(60_000);
    plan.vitalRules.systolic.normal.max = 150;
    const v3 = await t.request("PUT", `/v1/residents/${mother.id}/care-plan`, {
      token: operator.token,
      body: { baseVersion: 2, plan },
    });
    expect(v3.body.version).toBe(3);

    const history = await t.request("GET", `/v1/residents/${mother.id}/care-plan/versions`, {
      token: daughter.token,
    });
    expect(
      history.body.items.map(
        (h: { version: number; changes: string[]; createdBy: { displayName: string } }) => [
          h.version,
          h.changes,
          h.createdBy.displayName,
        ],
      ),
    ).toEqual([
      [3, ["vitalRules"], "Night Desk"],
      [2, ["tasks", "medications"], "Li Mei"],
      [1, [], "Li Mei"],
    ]);
    expect(history.body.items[0].createdAt > history.body.items[1].createdAt).toBe(true);

    const old = await t.request("GET", `/v1/residents/${mother.id}/care-plan/versions/2`, {
      token: daughter.token,
    });
    expect(old.body.plan.vitalRules.systolic.normal.max).toBe(160);
    expect(
      (
        await t.request("GET", `/v1/residents/${mother.id}/care-plan/versions/9`, {
          token: daughter.token,
        })
      ).status,
    ).toBe(404);
  });

  it("saving over a newer version is a conflict, and nothing is written", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    await joinCircle(t, daughter.token, mother.id, brother, "primary");
    const v1 = await currentPlan(daughter.token, mother.id);
    const hers = { ...structuredClone(v1.plan), goals: ["stay at home safely"] };
    const his = { ...structuredClone(v1.plan), notes: "likes tea at four" };
    expect(
      (
        await t.request("PUT", `/v1/residents/${mother.id}/care-plan`, {
          token: daughter.token,
          body: { baseVersion: 1, plan: hers },
        })
      ).status,
    ).toBe(200);
    const late = await t.request("PUT", `/v1/residents/${mother.id}/care-plan`, {
      token: brother.token,
      body: { baseVersion: 1, plan: his },
    });
    expect(late.status).toBe(409);
    expect(late.body.error).toMatchObject({
      code: "version_conflict",
      details: { currentVersion: 2 },
    });
    const now = await currentPlan(daughter.token, mother.id);
    expect(now.version).toBe(2);
    expect(now.plan.notes).toBe("");
  });

  it("an unchanged plan makes no new version", async () => {
    const { daughter, mother } = await familyWithMother();
    const v1 = await currentPlan(daughter.token, mother.id);
    const res = await t.request("PUT", `/v1/residents/${mother.id}/care-plan`, {
      token: daughter.token,
      body: { baseVersion: 1, plan: v1.plan },
    });
    expect(res.body.version).toBe(1);
  });

  it.each([
    [
      "a wrong unit",
      (p: any) => {
        p.vitalRules.spo2.unit = "percent";
      },
      "plan.vitalRules.spo2.unit",
    ],
    [
      "a normal range upside down",
      (p: any) => {
        p.vitalRules.heart_rate.normal = { min: 120, max: 60 };
      },
      "plan.vitalRules.heart_rate.normal",
    ],
    [
      "a critical bound inside the normal range",
      (p: any) => {
        p.vitalRules.systolic.critical.max = 150;
      },
      "plan.vitalRules.systolic.critical.max",
    ],
    [
      "a task time that is not a time",
      (p: any) => {
        p.tasks = [{ id: "a", title: "x", schedule: { kind: "daily", times: ["25:00"] } }];
      },
      "plan.tasks.0.schedule.times.0",
    ],
    [
      "an unknown schedule kind",
      (p: any) => {
        p.tasks = [{ id: "a", title: "x", schedule: { kind: "hourly" } }];
      },
      "plan.tasks.0.schedule.kind",
    ],
    [
      "an unknown weekday",
      (p: any) => {
        p.tasks = [{ id: "a", title: "x", schedule: { kind: "weekly", days: ["funday"] } }];
      },
      "plan.tasks.0.schedule.days.0",
    ],
    [
      "two medications with one id",
      (p: any) => {
        p.medications = [
          { id: "m", name: "A", dose: "1", times: ["08:00"] },
          { id: "m", name: "B", dose: "1", times: ["09:00"] },
        ];
      },
      "plan.medications.1.id",
    ],
    [
      "an emergency phone without country code",
      (p: any) => {
        p.emergencyContacts = [{ kind: "phone", name: "Neighbour", phone: "5551234" }];
      },
      "plan.emergencyContacts.0.phone",
    ],
    [
      "an emergency contact outside the circle",
      (p: any) => {
        p.emergencyContacts = [{ kind: "member", userId: "someone-else" }];
      },
      "plan.emergencyContacts.0.userId",
    ],
    [
      "an unknown section",
      (p: any) => {
        p.diet = "soft food";
      },
      "plan.diet",
    ],
  ])("refuses %s, naming the field", async (_what, mutate, path) => {
    const { daughter, mother } = await familyWithMother();
    const v1 = await currentPlan(daughter.token, mother.id);
    const plan = structuredClone(v1.plan);
    mutate(plan);
    const res = await t.request("PUT", `/v1/residents/${mother.id}/care-plan`, {
      token: daughter.token,
      body: { baseVersion: 1, plan },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details.issues.map((i: { path: string }) => i.path)).toContain(path);
    expect((await currentPlan(daughter.token, mother.id)).version).toBe(1);
  });

  it("a member reads the plan but cannot change it; reads are audited", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    await joinCircle(t, daughter.token, mother.id, brother);
    const v1 = await currentPlan(brother.token, mother.id);
    const res = await t.request("PUT", `/v1/residents/${mother.id}/care-plan`, {
      token: brother.token,
      body: { baseVersion: 1, plan: v1.plan },
    });
    expect(res.status).toBe(403);
    const audit = await t.request(
      "GET",
      `/v1/audit?residentId=${mother.id}&action=careplan.read&actorUserId=${brother.id}`,
      {
        token: operator.token,
      },
    );
    expect(audit.body.items).toHaveLength(1);
  });

  it("a phone emergency contact is stored in E.164", async () => {
    const { daughter, mother } = await familyWithMother();
    const v1 = await currentPlan(daughter.token, mother.id);
    const plan = structuredClone(v1.plan);
    plan.emergencyContacts.push({
      kind: "phone",
      name: "Mrs Zhou next door",
      phone: "+86 139 0000 1111",
    });
    const res = await t.request("PUT", `/v1/residents/${mother.id}/care-plan`, {
      token: daughter.token,
      body: { baseVersion: 1, plan },
    });
    expect(res.body.plan.emergencyContacts).toEqual([
      { kind: "member", userId: daughter.id },
      { kind: "phone", name: "Mrs Zhou next door", phone: "+8613900001111", relationship: null },
    ]);
  });
});
