// The operator desk (duty, claim, hand-over), the alert event stream and its resume, the
// per-recipient limits (caps and bundles), and the SMS outbox when Twilio is not configured.
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Alerting,
  advance,
  eventually,
  type Household,
  household,
  startAlerting,
} from "./helpers/alerting";
import { connectDevice, event, publish, registerDevice } from "./helpers/devices.factory";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident } from "./helpers/residents.factory";
import { createTestApp } from "./helpers/test-app";

let a: Alerting;
let operator: SignedIn;

beforeAll(async () => {
  a = await startAlerting();
  operator = await createOperator(a.t);
});
afterAll(() => a.close());

let seq = 0;
async function press(h: Household, client: MqttClient, type = "sos") {
  await publish(a.t, client, `${h.device.topicRoot}event`, event(a.t, `d-${++seq}`, type));
}

async function alertsOf(h: Household) {
  const res = await a.t.request("GET", `/v1/alerts?residentId=${h.residentId}`, {
    token: h.daughter.token,
  });
  return res.body.items as { id: string; kind: string; status: string; severity: string }[];
}

async function subscribe(token: string) {
  const sub = await a.push.subscribe();
  const res = await a.t.request("POST", "/v1/push/subscriptions", { token, body: sub });
  expect(res.status).toBe(201);
  return sub;
}

// Payloads are kincare's JSON, typed loosely here.
const pushesTo = (endpoint: string) =>
  a.push.received.filter((p) => p.endpoint === endpoint) as { payload: any; urgency: string }[];
const settle = () => new Promise((r) => setTimeout(r, 300));

describe("the operator desk", () => {
  it("reaches the operators on duty; one claims the alert and hands it over with a note", async () => {
    const colleague = await createOperator(a.t);
    const myPush = await subscribe(operator.token);
    const theirPush = await subscribe(colleague.token);
    const duty = await a.t.request("PUT", "/v1/desk/duty", {
      token: operator.token,
      body: { onDuty: true },
    });
    expect(duty.body.onDuty.map((d: { userId: string }) => d.userId)).toContain(operator.id);

    const h = await household(a);
    await a.t.request("PUT", `/v1/residents/${h.residentId}/escalation-policy`, {
      token: h.daughter.token,
      body: {
        tiers: [{ recipients: [{ kind: "desk" }], channels: ["push"], waitMinutes: 5 }],
        repeatEveryMinutes: 5,
        repeatLimit: 1,
      },
    });
    const client = await connectDevice(a.t, h.device);
    await press(h, client);
    const [alert] = await eventually(() => alertsOf(h));
    await eventually(async () =>
      pushesTo(myPush.endpoint).find((p) => p.payload?.alertId === alert!.id),
    );
    await settle();
    expect(pushesTo(theirPush.endpoint)).toHaveLength(0);

    const family = await a.t.request("POST", `/v1/alerts/${alert!.id}/claim`, {
      token: h.daughter.token,
      body: {},
    });
    expect(family.status).toBe(403);
    const claimed = await a.t.request("POST", `/v1/alerts/${alert!.id}/claim`, {
      token: operator.token,
      body: { note: "calling her landline" },
    });
    expect(claimed.status).toBe(200);
    expect(claimed.body).toMatchObject({ status: "acknowledged", acknowledgedBy: operator.id });
    expect(claimed.body.accessNotes).toContain("Key safe");

    const handed = await a.t.request("POST", `/v1/alerts/${alert!.id}/handover`, {
      token: operator.token,
      body: { toUserId: colleague.id, note: "ambulance on its way, follow up at 07:30" },
    });
    expect(handed.status).toBe(200);
    expect(handed.body.acknowledgedBy).toBe(colleague.id);
    const entry = handed.body.timeline.find((e: { type: string }) => e.type === "handed_over");
    expect(entry.details).toMatchObject({
      toUserId: colleague.id,
      note: "ambulance on its way, follow up at 07:30",
    });
    await eventually(async () =>
      pushesTo(theirPush.endpoint).find((p) =>
        String(p.payload?.body).includes("handed you the alert"),
      ),
    );
    const toFamily = await a.t.request("POST", `/v1/alerts/${alert!.id}/handover`, {
      token: operator.token,
      body: { toUserId: h.daughter.id, note: "x" },
    });
    expect(toFamily.body.error.code).toBe("validation_failed");

    await a.t.request("PUT", "/v1/desk/duty", { token: operator.token, body: { onDuty: false } });
    await client.endAsync();
  });
});

interface Event {
  id: string;
  event: string;
  data: { type?: string; alert?: { id: string; residentId: string } };
}

/** Reads a server-sent events stream until `until` says stop (or the time runs out). */
async function readEvents(
  url: string,
  token: string,
  opts: { lastEventId?: string; until: (events: Event[]) => boolean; timeoutMs?: number },
): Promise<Event[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? 5_000);
  const res = await fetch(`${url}/v1/alerts/stream`, {
    headers: {
      authorization: `Bearer ${token}`,
      ...(opts.lastEventId ? { "last-event-id": opts.lastEventId } : {}),
    },
    signal: controller.signal,
  });
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const events: Event[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of res.body!) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let cut = buffer.indexOf("\n\n");
      while (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const fields = Object.fromEntries(
          block
            .split("\n")
            .filter((l) => l && !l.startsWith(":"))
            .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]),
        );
        if (fields.event)
          events.push({
            id: fields.id ?? "",
            event: fields.event,
            data: JSON.parse(fields.data || "{}"),
          });
        cut = buffer.indexOf("\n\n");
      }
      if (opts.until(events)) break;
    }
  } catch (error) {
    if ((error as Error).name !== "AbortError") throw error;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

describe("the alert event stream", () => {
  it("carries a family's own alert changes only, and resumes from Last-Event-ID on another kincare process", async () => {
    const h = await household(a);
    const stranger = await signUpFamily(a.t);
    const client = await connectDevice(a.t, h.device);
    const url = a.t.config.PUBLIC_URL;

    const watching = readEvents(url, h.daughter.token, {
      until: (ev) => ev.some((e) => e.data.type === "notifying"),
    });
    const strangerSees = readEvents(url, stranger.token, { until: () => false, timeoutMs: 1_500 });
    await new Promise((r) => setTimeout(r, 200));
    await press(h, client);
    const first = await watching;
    expect(first[0]!.event).toBe("ready");
    const raised = first.find((e) => e.data.type === "raised");
    expect(raised?.data.alert?.residentId).toBe(h.residentId);
    const last = first.at(-1)!.id;
    expect((await strangerSees).filter((e) => e.event === "alert")).toHaveLength(0);

    // While disconnected, the daughter takes charge; the reconnect lands on a second process.
    const alertId = raised!.data.alert!.id;
    await a.t.request("POST", `/v1/alerts/${alertId}/acknowledge`, {
      token: h.daughter.token,
      body: {},
    });
    const other = await createTestApp({ testDb: a.t.testDb, serve: true });
    try {
      const resumed = await readEvents(other.config.PUBLIC_URL, h.daughter.token, {
        lastEventId: last,
        until: (ev) => ev.some((e) => e.data.type === "acknowledged"),
      });
      const ids = resumed.filter((e) => e.event === "alert").map((e) => Number(e.id));
      expect(ids.length).toBeGreaterThan(0);
      expect(Math.min(...ids)).toBeGreaterThan(Number(last));
      expect(new Set(ids).size).toBe(ids.length);
      const seenBefore = new Set(first.map((e) => e.id));
      expect(ids.some((id) => seenBefore.has(String(id)))).toBe(false);
    } finally {
      await other.close();
    }
    await client.endAsync();
  });
});

describe("limits: caps and bundles", () => {
  it("caps warnings per person per hour and bundles the rest with low-severity notices; SOS is never capped", async () => {
    const patch = await a.t.request("PATCH", "/v1/settings", {
      token: operator.token,
      body: { "notifications.warning_cap_per_hour": 1 },
    });
    expect(patch.status).toBe(200);
    try {
      const h = await household(a, { kind: "motion_sensor" });
      const client = await connectDevice(a.t, h.device);
      const endpoint = h.daughter.subscription!.endpoint;
      await press(h, client, "no_motion");
      await eventually(async () => pushesTo(endpoint).length === 1);
      await press(h, client, "tamper");
      await press(h, client, "low_battery");
      await settle();
      expect(pushesTo(endpoint)).toHaveLength(1);

      // SOS is never capped.
      await press(h, client, "sos");
      await eventually(async () => pushesTo(endpoint).some((p) => p.urgency === "high"));

      // The bundle goes out once, after the bundle window, with the held notices (the later tiers
      // of the two warnings, reached in the same run, may add to it).
      const before = pushesTo(endpoint).length;
      await advance(a.t, 61 * 60_000);
      const bundle = await eventually(async () =>
        pushesTo(endpoint)
          .slice(before)
          .find((p) => /\d+ notices/.test(String(p.payload?.title))),
      );
      expect(String(bundle.payload?.body)).toContain("tampering");
      expect(String(bundle.payload?.body)).toContain("low battery");
      await settle();
      expect(
        pushesTo(endpoint)
          .slice(before)
          .filter((p) => /notice/.test(String(p.payload?.title))),
      ).toHaveLength(1);
      await client.endAsync();
    } finally {
      await a.t.request("PATCH", "/v1/settings", {
        token: operator.token,
        body: { "notifications.warning_cap_per_hour": 6 },
      });
    }
  });
});

describe("without Twilio credentials", () => {
  it("says SMS is disabled at start and keeps texts in the outbox operators read", async () => {
    const t = await createTestApp({ mqtt: true, jobs: true });
    try {
      expect(t.logText()).toContain("SMS is disabled");
      const op = await createOperator(t);
      const daughter = await signUpFamily(t, { phone: "+8613912340000" });
      const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
      // Confirmed directly: the code itself would sit in the outbox.
      await t.db
        .insertInto("phone_numbers")
        .values({
          phone: "+8613912340000",
          confirmed_at: t.clock.now().toISOString(),
          opted_out_at: null,
          code_hash: null,
          code_expires_at: null,
          code_attempts: 0,
          invited_at: null,
          language: null,
          created_at: t.clock.now().toISOString(),
          updated_at: t.clock.now().toISOString(),
        })
        .execute();
      const device = await registerDevice(t, daughter.token, residentId, { kind: "sos_button" });
      const client = await connectDevice(t, device);
      await publish(t, client, `${device.topicRoot}event`, event(t, "o-1", "sos"));
      const outbox = await eventually(async () => {
        const res = await t.request("GET", "/v1/notifications/outbox", { token: op.token });
        return res.body.items.length > 0 ? res.body : undefined;
      });
      expect(outbox.smsEnabled).toBe(false);
      expect(outbox.items[0]).toMatchObject({ to: "+8613912340000", purpose: "alert_step" });
      expect(outbox.items[0].body).toContain("pressed the SOS button");
      const denied = await t.request("GET", "/v1/notifications/outbox", { token: daughter.token });
      expect(denied.status).toBe(403);
      // Health text never reaches the logs.
      expect(t.logText()).not.toContain("pressed the SOS button");
      await client.endAsync();
    } finally {
      await t.close();
    }
  });
});
