// Alerts raised by what devices send, over a real MQTT connection: SOS and falls, the resident's
// cancel, vital rules with duration and hysteresis, devices going offline; and the alert API.
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectDevice,
  event,
  nextMessage,
  publish,
  type Registered,
  registerDevice,
  telemetry,
} from "./helpers/devices.factory";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp({ mqtt: true });
  operator = await createOperator(t);
});
afterAll(() => t.close());

interface Home {
  daughter: SignedIn;
  residentId: string;
  device: Registered;
  client: MqttClient;
}

async function home(kind = "hub"): Promise<Home> {
  const daughter = await signUpFamily(t);
  const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
  const device = await registerDevice(t, daughter.token, residentId, { kind });
  const client = await connectDevice(t, device);
  return { daughter, residentId, device, client };
}

async function alertsOf(h: Home) {
  const res = await t.request("GET", `/v1/alerts?residentId=${h.residentId}`, {
    token: h.daughter.token,
  });
  expect(res.status).toBe(200);
  return res.body.items as {
    id: string;
    kind: string;
    severity: string;
    status: string;
    summary: string;
    closeReason: string | null;
  }[];
}

let seq = 0;
const send = (h: Home, type: string) =>
  publish(t, h.client, `${h.device.topicRoot}event`, event(t, `ev-${++seq}`, type), { qos: 1 });
const vital = (h: Home, readings: unknown[]) =>
  publish(t, h.client, `${h.device.topicRoot}telemetry`, telemetry(t, `tm-${++seq}`, readings), {
    qos: 1,
  });

describe("SOS and falls", () => {
  it("an SOS raises a critical alert before the PUBACK, and the device hears that it arrived", async () => {
    const h = await home("sos_pendant");
    await h.client.subscribeAsync(h.device.commandTopic, { qos: 1 });
    const received = nextMessage(h.client, h.device.commandTopic);
    await send(h, "sos");
    const [alert] = await alertsOf(h);
    expect(alert).toMatchObject({ kind: "sos", severity: "critical", status: "open" });
    const cmd = await received;
    expect(cmd).toMatchObject({ type: "sos_received", alertId: alert!.id });
    expect(typeof cmd.cmdId).toBe("string");
    await h.client.endAsync();
  });

  it("a second SOS while one is open joins it, on its timeline", async () => {
    const h = await home("sos_button");
    await send(h, "sos");
    t.clock.advance(20_000);
    await send(h, "sos");
    const alerts = await alertsOf(h);
    expect(alerts).toHaveLength(1);
    const detail = await t.request("GET", `/v1/alerts/${alerts[0]!.id}`, {
      token: h.daughter.token,
    });
    expect(detail.body.timeline.map((e: { type: string }) => e.type)).toEqual([
      "raised",
      "repeated",
    ]);
    await h.client.endAsync();
  });

  it("the resident cancels an accidental press within the window; it stays on record", async () => {
    const h = await home("sos_button");
    await send(h, "sos");
    t.clock.advance(30_000);
    await send(h, "sos_cancel");
    const [alert] = await alertsOf(h);
    expect(alert).toMatchObject({
      kind: "sos",
      status: "cancelled",
      closeReason: "cancelled by the resident from the device",
    });
    await h.client.endAsync();
  });

  it("a cancel after the window, or after someone took charge, does not close the SOS", async () => {
    const h = await home("sos_button");
    await send(h, "sos");
    t.clock.advance(121_000);
    await send(h, "sos_cancel");
    const [alert] = await alertsOf(h);
    expect(alert!.status).toBe("open");
    await h.client.endAsync();
  });

  it("a fall is critical at once, even for a paused resident; no-motion is muted while paused", async () => {
    const h = await home("fall_detector");
    await t.request("POST", `/v1/residents/${h.residentId}/status`, {
      token: h.daughter.token,
      body: { status: "paused", reason: "away" },
    });
    t.system.link.residentChanged(h.residentId);
    await send(h, "no_motion");
    await send(h, "fall");
    const alerts = await alertsOf(h);
    expect(alerts.map((a) => [a.kind, a.severity])).toEqual([["fall", "critical"]]);
    await h.client.endAsync();
  });

  it("a door opened in the resident's night window raises a warning; by day it does not", async () => {
    const h = await home("door_sensor");
    // 09:00Z is 17:00 in Shanghai: daytime.
    await send(h, "door_open");
    expect(await alertsOf(h)).toEqual([]);
    t.clock.advance(6 * 3_600_000); // 23:00 in Shanghai
    try {
      await send(h, "door_open");
      expect((await alertsOf(h)).map((a) => [a.kind, a.severity])).toEqual([
        ["door_open_night", "warning"],
      ]);
    } finally {
      t.clock.advance(-6 * 3_600_000);
    }
    await h.client.endAsync();
  });
});

describe("vital rules", () => {
  it("one low SpO2 reading is not enough; two in a row raise a warning; back in range resolves it", async () => {
    const h = await home("pulse_oximeter");
    await vital(h, [{ type: "spo2", unit: "%", value: 90 }]);
    expect(await alertsOf(h)).toEqual([]);
    t.clock.advance(60_000);
    await vital(h, [{ type: "spo2", unit: "%", value: 91 }]);
    let [alert] = await alertsOf(h);
    expect(alert).toMatchObject({ kind: "vital", severity: "warning", status: "open" });
    // 92 is the bound, but the hysteresis margin (1) keeps it outside: no flapping.
    t.clock.advance(60_000);
    await vital(h, [{ type: "spo2", unit: "%", value: 92.5 }]);
    expect((await alertsOf(h))[0]!.status).toBe("open");
    t.clock.advance(60_000);
    await vital(h, [{ type: "spo2", unit: "%", value: 95 }]);
    [alert] = await alertsOf(h);
    expect(alert).toMatchObject({ status: "resolved" });
    expect(alert!.closeReason).toContain("back in range");
    await h.client.endAsync();
  });

  it("a warning that turns critical escalates the same alert; a critical one waits for a person", async () => {
    const h = await home("pulse_oximeter");
    for (const value of [90, 90, 85, 84]) {
      t.clock.advance(60_000);
      await vital(h, [{ type: "spo2", unit: "%", value }]);
    }
    let alerts = await alertsOf(h);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: "critical", status: "open" });
    t.clock.advance(60_000);
    await vital(h, [{ type: "spo2", unit: "%", value: 97 }]);
    alerts = await alertsOf(h);
    expect(alerts[0]!.status).toBe("open");
    const detail = await t.request("GET", `/v1/alerts/${alerts[0]!.id}`, {
      token: h.daughter.token,
    });
    expect(detail.body.timeline.map((e: { type: string }) => e.type)).toEqual([
      "raised",
      "escalated",
      "back_in_range",
    ]);
    await h.client.endAsync();
  });

  it("follows the plan: a rule in minutes, and a disabled rule raises nothing", async () => {
    const h = await home("blood_pressure_monitor");
    const current = await t.request("GET", `/v1/residents/${h.residentId}/care-plan`, {
      token: h.daughter.token,
    });
    const plan = structuredClone(current.body.plan);
    plan.vitalRules.heart_rate = { ...plan.vitalRules.heart_rate, consecutive: 10, minutes: 5 };
    plan.vitalRules.systolic.enabled = false;
    await t.request("PUT", `/v1/residents/${h.residentId}/care-plan`, {
      token: h.daughter.token,
      body: { baseVersion: 1, plan },
    });
    t.system.link.residentChanged(h.residentId);
    await vital(h, [
      { type: "heart_rate", unit: "/min", value: 120 },
      { type: "blood_pressure", unit: "mmHg", systolic: 190, diastolic: 95 },
    ]);
    t.clock.advance(3 * 60_000);
    await vital(h, [{ type: "heart_rate", unit: "/min", value: 121 }]);
    expect(await alertsOf(h)).toEqual([]);
    t.clock.advance(3 * 60_000);
    await vital(h, [{ type: "heart_rate", unit: "/min", value: 119 }]);
    const alerts = await alertsOf(h);
    expect(alerts.map((a) => [a.kind, a.severity])).toEqual([["vital", "warning"]]);
    expect(alerts[0]!.summary).toContain("Heart rate");
    await h.client.endAsync();
  });
});

describe("device health", () => {
  it("a Last Will saying offline raises 'device offline'; the device coming back resolves it", async () => {
    const daughter = await signUpFamily(t);
    const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
    const device = await registerDevice(t, daughter.token, residentId);
    const client = await connectDevice(t, device, {
      will: {
        topic: `${device.topicRoot}status`,
        payload: Buffer.from("offline"),
        qos: 1,
        retain: true,
      },
    });
    await publish(t, client, `${device.topicRoot}status`, "online", { qos: 1, retain: true });
    t.clock.advance(1_000); // the will is news later than anything the device said before
    client.stream.destroy(); // no DISCONNECT packet: the broker sends the will
    const h = { daughter, residentId } as Home;
    await waitFor(async () =>
      (await alertsOf(h)).some((a) => a.kind === "device_offline" && a.status === "open"),
    );
    const again = await connectDevice(t, device);
    await publish(t, again, `${device.topicRoot}status`, "online", { qos: 1, retain: true });
    await waitFor(async () => (await alertsOf(h)).every((a) => a.status === "resolved"));
    await again.endAsync();
  });

  it("a device silent for twice its heartbeat interval is found by the durable sweep", async () => {
    const h = await home("motion_sensor");
    await publish(
      t,
      h.client,
      `${h.device.topicRoot}heartbeat`,
      JSON.stringify({ ts: t.clock.now().getTime(), battery: 80, rssi: -60 }),
      { qos: 1 },
    );
    await h.client.endAsync();
    await t.system.ingest.flushSeen();
    const seen = await t.request("GET", `/v1/devices/${h.device.id}`, { token: h.daughter.token });
    expect(seen.body).toMatchObject({ connection: "online", battery: 80, rssi: -60 });
    t.clock.advance(3 * 60_000); // heartbeat every 60 s
    await t.db
      .updateTable("jobs")
      .set({ due_at: t.clock.now().toISOString() })
      .where("kind", "=", "devices.silence_sweep")
      .execute();
    await t.scheduler.drain();
    const alerts = await alertsOf(h);
    expect(alerts.map((a) => [a.kind, a.status])).toEqual([["device_offline", "open"]]);
  });
});

describe("the alert API", () => {
  it("family members take charge and resolve; the first acknowledgement wins; strangers see nothing", async () => {
    const h = await home("sos_button");
    const brother = await signUpFamily(t, { displayName: "Li Lei" });
    const stranger = await signUpFamily(t);
    await joinCircle(t, h.daughter.token, h.residentId, brother);
    await send(h, "sos");
    const [alert] = await alertsOf(h);
    const id = alert!.id;
    expect((await t.request("GET", `/v1/alerts/${id}`, { token: stranger.token })).status).toBe(
      404,
    );
    expect(
      (await t.request("POST", `/v1/alerts/${id}/acknowledge`, { token: stranger.token, body: {} }))
        .status,
    ).toBe(404);
    const mine = await t.request("GET", "/v1/alerts?status=open,acknowledged", {
      token: stranger.token,
    });
    expect(mine.body.items).toEqual([]);

    const ack = await t.request("POST", `/v1/alerts/${id}/acknowledge`, {
      token: brother.token,
      body: { note: "calling her now" },
    });
    expect(ack.body).toMatchObject({ status: "acknowledged", acknowledgedBy: brother.id });
    const second = await t.request("POST", `/v1/alerts/${id}/acknowledge`, {
      token: h.daughter.token,
      body: {},
    });
    expect(second.status).toBe(409);
    expect(second.body.error.message).toContain("Li Lei");

    const desk = await t.request("GET", "/v1/alerts?status=acknowledged&severity=critical", {
      token: operator.token,
    });
    expect(desk.body.items.map((a: { id: string }) => a.id)).toContain(id);

    const resolved = await t.request("POST", `/v1/alerts/${id}/resolve`, {
      token: h.daughter.token,
      body: { outcome: "false_alarm", note: "she pressed it by mistake" },
    });
    expect(resolved.body).toMatchObject({ status: "resolved", closeReason: "false_alarm" });
    const types = resolved.body.timeline.map((e: { type: string }) => e.type);
    expect(types[0]).toBe("raised");
    expect(types.slice(-2)).toEqual(["acknowledged", "resolved"]);
    expect(resolved.body.timeline.at(-1).details).toMatchObject({
      reason: "false_alarm",
      note: "she pressed it by mistake",
    });
    const again = await t.request("POST", `/v1/alerts/${id}/resolve`, {
      token: h.daughter.token,
      body: { outcome: "other" },
    });
    expect(again.body.error.code).toBe("invalid_state");
    await h.client.endAsync();
  });

  it("a resident sees their own alerts but cannot acknowledge them", async () => {
    const h = await home("sos_button");
    await t.request("POST", `/v1/residents/${h.residentId}/account`, {
      token: operator.token,
      body: { email: `self${Date.now()}@example.com`, password: "grandma's password" },
    });
    const users = await t.db
      .selectFrom("residents")
      .select("user_id")
      .where("id", "=", h.residentId)
      .executeTakeFirstOrThrow();
    const email = (
      await t.db
        .selectFrom("users")
        .select("email")
        .where("id", "=", users.user_id!)
        .executeTakeFirstOrThrow()
    ).email!;
    const login = await t.request("POST", "/v1/auth/login", {
      body: { login: email, password: "grandma's password" },
    });
    const self = login.body.session.token as string;
    await send(h, "sos");
    const list = await t.request("GET", "/v1/alerts", { token: self });
    expect(list.body.items).toHaveLength(1);
    const ack = await t.request("POST", `/v1/alerts/${list.body.items[0].id}/acknowledge`, {
      token: self,
      body: {},
    });
    expect(ack.status).toBe(403);
    await h.client.endAsync();
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 5_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("condition not met in time");
}
