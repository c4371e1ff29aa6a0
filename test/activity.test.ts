// The silence rules, run by their durable job: no check-in by the plan's local deadline, no sign
// of activity for the plan's period, both muted while the resident is paused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDevice, event, publish, registerDevice } from "./helpers/devices.factory";
import { type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ mqtt: true });
});
afterAll(() => t.close());

async function sweep() {
  await t.system.ingest.flushSeen();
  await t.db
    .updateTable("jobs")
    .set({ due_at: t.clock.now().toISOString() })
    .where("kind", "=", "residents.activity_sweep")
    .where("status", "=", "pending")
    .execute();
  await t.scheduler.drain();
}

async function alerts(residentId: string, token: string) {
  const res = await t.request("GET", `/v1/alerts?residentId=${residentId}`, { token });
  return (res.body.items as { kind: string; status: string; summary: string }[]).map((a) => [
    a.kind,
    a.status,
  ]);
}

async function watchedHome(deadline: string | null, noMotionHours = 12) {
  const daughter: SignedIn = await signUpFamily(t);
  const residentId = (
    await createResident(t, daughter.token, { relationship: "daughter", timeZone: "Asia/Shanghai" })
  ).id;
  const current = await t.request("GET", `/v1/residents/${residentId}/care-plan`, {
    token: daughter.token,
  });
  await t.request("PUT", `/v1/residents/${residentId}/care-plan`, {
    token: daughter.token,
    body: {
      baseVersion: current.body.version,
      plan: { ...current.body.plan, checkInDeadline: deadline, noMotionHours },
    },
  });
  const device = await registerDevice(t, daughter.token, residentId, { kind: "sos_button" });
  return { daughter, residentId, device };
}

describe("silence rules", () => {
  it("no check-in by 10:00 Shanghai time raises 'no check-in today'; the check-in resolves it", async () => {
    const start = t.clock.now();
    try {
      t.clock.set("2026-11-22T09:00:00Z"); // 17:00 in Shanghai
      const h = await watchedHome("10:00", 24);
      t.clock.set("2026-11-23T01:30:00Z"); // 09:30 the next morning: not yet
      await sweep();
      expect(await alerts(h.residentId, h.daughter.token)).toEqual([]);
      t.clock.set("2026-11-23T02:01:00Z"); // 10:01
      await sweep();
      expect(await alerts(h.residentId, h.daughter.token)).toEqual([["no_check_in", "open"]]);

      const client = await connectDevice(t, h.device);
      t.clock.advance(5 * 60_000);
      await publish(t, client, `${h.device.topicRoot}event`, event(t, "ci-1", "check_in"));
      await client.endAsync();
      t.clock.advance(60_000);
      await sweep();
      expect(await alerts(h.residentId, h.daughter.token)).toEqual([["no_check_in", "resolved"]]);
    } finally {
      t.clock.set(start);
    }
  });

  it("no sign of life for the plan's 12 hours raises a warning; a motion resolves it", async () => {
    const start = t.clock.now();
    try {
      const h = await watchedHome(null);
      t.clock.advance(11 * 3_600_000);
      await sweep();
      expect(await alerts(h.residentId, h.daughter.token)).toEqual([]);
      t.clock.advance(2 * 3_600_000);
      await sweep();
      expect(await alerts(h.residentId, h.daughter.token)).toEqual([["no_activity", "open"]]);
      const client = await connectDevice(t, h.device);
      t.clock.advance(60_000);
      await publish(t, client, `${h.device.topicRoot}event`, event(t, "mv-1", "motion"));
      await client.endAsync();
      t.clock.advance(60_000);
      await sweep();
      expect(await alerts(h.residentId, h.daughter.token)).toEqual([["no_activity", "resolved"]]);
    } finally {
      t.clock.set(start);
    }
  });

  it("a paused resident's silence rules are muted", async () => {
    const start = t.clock.now();
    try {
      const h = await watchedHome("10:00");
      await t.request("POST", `/v1/residents/${h.residentId}/status`, {
        token: h.daughter.token,
        body: { status: "paused", reason: "in hospital" },
      });
      t.clock.advance(30 * 3_600_000);
      await sweep();
      expect(await alerts(h.residentId, h.daughter.token)).toEqual([]);
    } finally {
      t.clock.set(start);
    }
  });
});
