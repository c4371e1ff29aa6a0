// Alerts that reach a person, end to end with the real parts: a device publishes through the
// broker (embedded, or Mosquitto when MQTT_URL is set), kincare texts through the real twilio SDK
// to a fake Twilio API and pushes through the real web-push library to a local HTTPS push service
// that checks VAPID and decrypts the payload; replies and status callbacks come back signed.
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Alerting,
  advance,
  eventually,
  type Household,
  household,
  idle,
  KINCARE_NUMBER,
  mobile,
  reachablePerson,
  simpleChain,
  startAlerting,
} from "./helpers/alerting";
import { connectDevice, event, publish } from "./helpers/devices.factory";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { twilioErrors } from "./helpers/fake-twilio";
import { createProvider } from "./helpers/providers.factory";

let a: Alerting;
let operator: SignedIn;

beforeAll(async () => {
  a = await startAlerting();
  operator = await createOperator(a.t);
});
afterAll(() => a.close());

let seq = 0;
async function press(h: Household, client: MqttClient, type = "sos") {
  await publish(a.t, client, `${h.device.topicRoot}event`, event(a.t, `e-${++seq}`, type));
}

async function openAlert(h: Household) {
  return eventually(async () => {
    const res = await a.t.request("GET", `/v1/alerts?residentId=${h.residentId}`, {
      token: h.daughter.token,
    });
    return res.body.items[0] as { id: string; status: string; kind: string } | undefined;
  });
}

async function alertDetail(id: string, token = operator.token) {
  const res = await a.t.request("GET", `/v1/alerts/${id}`, { token });
  expect(res.status).toBe(200);
  return res.body;
}

const textsTo = (phone: string) => a.twilio.messages.filter((m) => m.to === phone && m.sid);
const alertTextsTo = (phone: string) => textsTo(phone).filter((m) => /Reply|回复/.test(m.body));
const pushesTo = (endpoint: string | undefined) =>
  a.push.received.filter((p) => p.endpoint === endpoint);
const codeIn = (body: string) => /(?:Reply|回复) ([A-Z0-9]{4})/.exec(body)?.[1];
const inboundUrl = () => `${a.t.config.PUBLIC_URL}/v1/webhooks/twilio/inbound`;

const hhmm = (at: Date, timeZone: string) =>
  new Intl.DateTimeFormat("en-GB", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(at);

/**
 * The next command of a type on a device's cmd topic, from one listener that skips the others:
 * sos_received may reach the device late, in the same packet burst as the sos_ack awaited.
 */
function nextCommand(client: MqttClient, topic: string, type: string, timeoutMs = 15_000) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("message", onMessage);
      reject(new Error(`no ${type} on ${topic} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      const cmd = JSON.parse(payload.toString()) as Record<string, unknown>;
      if (cmd.type !== type) return;
      clearTimeout(timer);
      client.off("message", onMessage);
      resolve(cmd);
    };
    client.on("message", onMessage);
  });
}

/** Lets the scheduler's loop run what is due, then checks nothing more was sent. */
const settle = () => new Promise((r) => setTimeout(r, 300));

async function withDevice(h: Household) {
  const client = await connectDevice(a.t, h.device);
  await client.subscribeAsync(h.device.commandTopic, { qos: 1 });
  return client;
}

describe("an SOS reaches a person", () => {
  it("tells the device, texts and pushes the first tier, then the next after its wait; an SMS reply with the code stops it all", async () => {
    const h = await household(a);
    await simpleChain(a, h);
    const client = await withDevice(h);
    const received = nextCommand(client, h.device.commandTopic, "sos_received");
    await press(h, client);
    expect(await received).toMatchObject({ type: "sos_received" });
    const alert = await openAlert(h);

    const [text] = await eventually(async () => alertTextsTo(h.daughter.phone));
    expect(text!.from).toBe(KINCARE_NUMBER);
    expect(text!.body).toContain("Grandma Wang");
    expect(text!.validityPeriod).toBe(900);
    expect(text!.statusCallback).toMatch(/\/v1\/webhooks\/twilio\/status\//);
    const [pushed] = await eventually(async () => pushesTo(h.daughter.subscription?.endpoint));
    expect(pushed).toMatchObject({ urgency: "high", ttl: 300 });
    expect(pushed!.payload).toMatchObject({ alertId: alert.id, severity: "critical" });
    expect(String((pushed!.payload as { url: string }).url)).toMatch(/\/a\/[\w-]+\.[\w-]+$/);
    await settle();
    expect(alertTextsTo(h.son.phone)).toHaveLength(0);

    // Nobody answered within the tier's two minutes: the son is called.
    await advance(a.t, 2 * 60_000);
    const [sonText] = await eventually(async () => alertTextsTo(h.son.phone));
    const code = codeIn(sonText!.body)!;
    expect(code).toBe(codeIn(text!.body));

    // Twilio reports delivery: the record and the timeline follow.
    expect(await a.twilio.sendStatus(sonText!.sid!, "delivered")).toBe(204);

    const ackCmd = nextCommand(client, h.device.commandTopic, "sos_ack");
    const reply = await a.twilio.sendInbound({
      from: h.son.phone,
      to: KINCARE_NUMBER,
      body: code.toLowerCase(),
      url: inboundUrl(),
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toContain("you are handling the alert");
    expect(reply.body).toContain("Key safe by the door, code 4711");
    expect(await ackCmd).toMatchObject({ type: "sos_ack", alertId: alert.id, by: "Li Lei" });

    const detail = await alertDetail(alert.id);
    expect(detail).toMatchObject({ status: "acknowledged", acknowledgedBy: h.son.id });
    const types = detail.timeline.map((e: { type: string }) => e.type);
    expect(types).toEqual(
      expect.arrayContaining(["raised", "notifying", "notification_sent", "escalated_to_tier"]),
    );
    expect(types).toContain("notification_delivered");
    expect(
      detail.timeline.find((e: { type: string }) => e.type === "acknowledged").details,
    ).toMatchObject({
      via: "sms",
      by: "Li Lei",
    });

    // The daughter hears who took charge; no step of the chain leaves any more.
    await eventually(async () =>
      pushesTo(h.daughter.subscription?.endpoint).find((p) =>
        String((p.payload as { body?: string }).body).includes("Li Lei is taking care"),
      ),
    );
    const before = a.twilio.messages.length;
    await advance(a.t, 30 * 60_000);
    await settle();
    expect(a.twilio.messages.slice(before).filter((m) => /Reply/.test(m.body))).toHaveLength(0);
    await client.endAsync();
  });

  it("repeats the last tier every N minutes up to its limit, then says the chain is exhausted", async () => {
    const h = await household(a);
    await a.t.request("PUT", `/v1/residents/${h.residentId}/escalation-policy`, {
      token: h.daughter.token,
      body: {
        tiers: [
          {
            recipients: [{ kind: "member", userId: h.daughter.id }],
            channels: ["sms"],
            waitMinutes: 1,
          },
        ],
        repeatEveryMinutes: 4,
        repeatLimit: 2,
      },
    });
    const client = await withDevice(h);
    await press(h, client);
    const alert = await openAlert(h);
    await eventually(async () => alertTextsTo(h.daughter.phone).length === 1);
    for (const expected of [2, 3]) {
      await advance(a.t, 4 * 60_000);
      await eventually(async () => alertTextsTo(h.daughter.phone).length === expected);
    }
    await advance(a.t, 60 * 60_000);
    await settle();
    expect(alertTextsTo(h.daughter.phone)).toHaveLength(3);
    const types = (await alertDetail(alert.id)).timeline.map((e: { type: string }) => e.type);
    expect(types.filter((t: string) => t === "notifying_again")).toHaveLength(2);
    expect(types).toContain("escalation_exhausted");
    await client.endAsync();
  });

  it("a new SOS on an alert someone took charge of tells that person again at once", async () => {
    const h = await household(a);
    await simpleChain(a, h);
    const client = await withDevice(h);
    await press(h, client);
    const alert = await openAlert(h);
    const ack = await a.t.request("POST", `/v1/alerts/${alert.id}/acknowledge`, {
      token: h.daughter.token,
      body: {},
    });
    expect(ack.status).toBe(200);
    expect(ack.body.accessNotes).toBe("Key safe by the door, code 4711");
    // Acknowledged through the API: the son's tier never comes.
    await advance(a.t, 10 * 60_000);
    await settle();
    expect(alertTextsTo(h.son.phone)).toHaveLength(0);
    const before = pushesTo(h.daughter.subscription?.endpoint).length;
    await press(h, client);
    await eventually(async () =>
      pushesTo(h.daughter.subscription?.endpoint)
        .slice(before)
        .find((p) => String((p.payload as { title?: string }).title).includes("again")),
    );
    await client.endAsync();
  });
});

describe("the auditor", () => {
  it("restarts an alert whose next step is overdue with nothing scheduled to run it", async () => {
    const h = await household(a);
    await simpleChain(a, h);
    const client = await withDevice(h);
    await press(h, client);
    const alert = await openAlert(h);
    await eventually(async () => alertTextsTo(h.daughter.phone));
    await idle(a.t);
    // The next step's job vanishes (a bug, a bad restore): the auditor notices it is overdue.
    await a.t.db.deleteFrom("jobs").where("dedupe_key", "=", `alert-step:${alert.id}:1`).execute();
    await advance(a.t, 3 * 60_000);
    await eventually(async () => alertTextsTo(h.son.phone), 10_000);
    const types = (await alertDetail(alert.id)).timeline.map((e: { type: string }) => e.type);
    expect(types).toContain("escalation_resumed");
    await client.endAsync();
  });
});

describe("an SOS the resident cancels", () => {
  it("stops the chain and tells those already reached that it was a mistake", async () => {
    const h = await household(a);
    await simpleChain(a, h);
    const client = await withDevice(h);
    await press(h, client);
    const alert = await openAlert(h);
    await eventually(async () => alertTextsTo(h.daughter.phone));
    await idle(a.t);
    await press(h, client, "sos_cancel");
    await eventually(async () =>
      textsTo(h.daughter.phone).find((m) => m.body.includes("cancelled the SOS")),
    );
    expect((await alertDetail(alert.id)).status).toBe("cancelled");
    await advance(a.t, 10 * 60_000);
    await settle();
    expect(alertTextsTo(h.son.phone)).toHaveLength(0);
    await client.endAsync();
  });
});

describe("acknowledging from any channel", () => {
  it("the push link's page shows the alert on GET (a link preview) and acknowledges only on its button", async () => {
    const h = await household(a);
    await simpleChain(a, h);
    const client = await withDevice(h);
    await press(h, client);
    const alert = await openAlert(h);
    const [pushed] = await eventually(async () => pushesTo(h.daughter.subscription?.endpoint));
    const url = String((pushed!.payload as { url: string }).url);

    const preview = await fetch(url);
    expect(preview.status).toBe(200);
    expect(await preview.text()).toContain("Grandma Wang");
    expect((await alertDetail(alert.id)).status).toBe("open");

    const forged = await fetch(`${url.slice(0, -3)}abc`, { method: "POST" });
    expect(forged.status).toBe(404);
    expect((await alertDetail(alert.id)).status).toBe("open");

    const ackCmd = nextCommand(client, h.device.commandTopic, "sos_ack");
    const pressed = await fetch(url, { method: "POST" });
    expect(pressed.status).toBe(200);
    expect(await pressed.text()).toContain("Key safe by the door");
    expect(await ackCmd).toMatchObject({ type: "sos_ack" });
    const detail = await alertDetail(alert.id);
    expect(detail).toMatchObject({ status: "acknowledged", acknowledgedBy: h.daughter.id });
    expect(
      detail.timeline.find((e: { type: string }) => e.type === "acknowledged").details.via,
    ).toBe("push");

    const again = await fetch(url, { method: "POST" });
    expect(again.status).toBe(409);
    await client.endAsync();
  });

  it("replying 1 takes the one open alert; with two open, kincare asks which instead of guessing", async () => {
    const mum = await household(a);
    await simpleChain(a, mum);
    const mumClient = await withDevice(mum);
    await press(mum, mumClient);
    const first = await openAlert(mum);
    await eventually(async () => alertTextsTo(mum.daughter.phone));

    const one = await a.twilio.sendInbound({
      from: mum.daughter.phone,
      to: KINCARE_NUMBER,
      body: "1",
      url: inboundUrl(),
    });
    expect(one.body).toContain("you are handling the alert");
    expect((await alertDetail(first.id)).status).toBe("acknowledged");
    await a.t.request("POST", `/v1/alerts/${first.id}/resolve`, {
      token: mum.daughter.token,
      body: { outcome: "false_alarm" },
    });

    // Li Na's father-in-law lives elsewhere; she is his first contact too.
    const second = await household(a);
    await a.t.request("PUT", `/v1/residents/${second.residentId}/escalation-policy`, {
      token: second.daughter.token,
      body: {
        tiers: [
          {
            recipients: [{ kind: "phone", phone: mum.daughter.phone, name: "Li Na" }],
            channels: ["sms"],
            waitMinutes: 5,
          },
        ],
        repeatEveryMinutes: 5,
        repeatLimit: 0,
      },
    });
    const secondClient = await withDevice(second);
    await press(mum, mumClient);
    await press(second, secondClient);
    await eventually(async () => alertTextsTo(mum.daughter.phone).length >= 3);
    const codes = alertTextsTo(mum.daughter.phone)
      .slice(-2)
      .map((m) => codeIn(m.body)!);

    const ambiguous = await a.twilio.sendInbound({
      from: mum.daughter.phone,
      to: KINCARE_NUMBER,
      body: "OK",
      url: inboundUrl(),
    });
    expect(ambiguous.body).toContain("2 alerts are waiting");
    for (const code of codes) expect(ambiguous.body).toContain(code);
    const open = await a.t.request("GET", "/v1/alerts?status=open", { token: operator.token });
    const ids = new Set(open.body.items.map((x: { id: string }) => x.id));

    const chosen = await a.twilio.sendInbound({
      from: mum.daughter.phone,
      to: KINCARE_NUMBER,
      body: ` ${codes[1]} `,
      url: inboundUrl(),
    });
    expect(chosen.body).toContain("you are handling the alert");
    const after = await a.t.request("GET", "/v1/alerts?status=open", { token: operator.token });
    const stillOpen = after.body.items.filter((x: { id: string }) => ids.has(x.id));
    expect(stillOpen).toHaveLength(ids.size - 1);
    await mumClient.endAsync();
    await secondClient.endAsync();
  });

  it("a webhook with a forged signature gets 403 and changes nothing", async () => {
    const inbound = await a.twilio.sendInbound({
      from: "+447700900001",
      to: KINCARE_NUMBER,
      body: "1",
      url: inboundUrl(),
      forgeSignature: true,
    });
    expect(inbound.status).toBe(403);
    const status = await fetch(`${a.t.config.PUBLIC_URL}/v1/webhooks/twilio/status/x`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": "nope",
      },
      body: "MessageSid=SM1&MessageStatus=delivered",
    });
    expect(status.status).toBe(403);
  });
});

describe("when a channel fails", () => {
  it("a 410 from the push service removes the subscription", async () => {
    const h = await household(a);
    await simpleChain(a, h);
    a.push.failNext(h.daughter.subscription!.endpoint, 410);
    const client = await withDevice(h);
    await press(h, client);
    const alert = await openAlert(h);
    await eventually(async () => {
      const subs = await a.t.request("GET", "/v1/push/subscriptions", { token: h.daughter.token });
      return subs.body.items.length === 0;
    });
    const deliveries = await a.t.request("GET", `/v1/alerts/${alert.id}/deliveries`, {
      token: h.daughter.token,
    });
    expect(deliveries.body.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ channel: "push", status: "failed", errorCode: "410" }),
      ]),
    );
    await client.endAsync();
  });

  it("an invalid number and a dead subscription: nobody in the tier is reachable, so the next tier is called at once", async () => {
    const h = await household(a);
    await simpleChain(a, h);
    a.twilio.failNext(h.daughter.phone, twilioErrors.invalidTo);
    a.push.failNext(h.daughter.subscription!.endpoint, 410);
    const client = await withDevice(h);
    await press(h, client);
    const alert = await openAlert(h);
    // No clock advance: the son's text comes because the daughter could not be reached.
    await eventually(async () => alertTextsTo(h.son.phone).length === 1);
    const detail = await alertDetail(alert.id);
    const failed = detail.timeline.filter(
      (e: { type: string }) => e.type === "notification_failed",
    );
    expect(failed.map((e: { details: { reason: string } }) => e.details.reason)).toContain(
      "the number is not a valid phone number",
    );
    expect(detail.timeline.map((e: { type: string }) => e.type)).toContain("nobody_reached");
    await client.endAsync();
  });

  it("a number its owner has not confirmed receives no alert text", async () => {
    const h = await household(a);
    const neighbour = await reachablePerson(a, {
      confirm: false,
      push: false,
      displayName: "Neighbour",
    });
    await a.t.request("PUT", `/v1/residents/${h.residentId}/escalation-policy`, {
      token: h.daughter.token,
      body: {
        tiers: [
          {
            recipients: [
              { kind: "phone", phone: neighbour.phone, name: "Mr Chen" },
              { kind: "member", userId: h.daughter.id },
            ],
            channels: ["sms"],
            waitMinutes: 5,
          },
        ],
        repeatEveryMinutes: 5,
        repeatLimit: 0,
      },
    });
    const client = await withDevice(h);
    await press(h, client);
    const alert = await openAlert(h);
    await eventually(async () => alertTextsTo(h.daughter.phone).length === 1);
    await settle();
    expect(textsTo(neighbour.phone)).toHaveLength(0);
    const deliveries = await a.t.request("GET", `/v1/alerts/${alert.id}/deliveries`, {
      token: h.daughter.token,
    });
    expect(deliveries.body.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          recipientName: "Mr Chen",
          status: "skipped",
          reason: "the number is not confirmed by its owner yet",
        }),
      ]),
    );

    // Asked to confirm, Mr Chen replies to the first text: now he is reached.
    const invite = await a.t.request(
      "POST",
      `/v1/residents/${h.residentId}/contact-phones/confirmation`,
      {
        token: h.daughter.token,
        body: { phone: neighbour.phone },
      },
    );
    expect(invite.status).toBe(202);
    await eventually(async () => textsTo(neighbour.phone).length === 1);
    const yes = await a.twilio.sendInbound({
      from: neighbour.phone,
      to: KINCARE_NUMBER,
      body: "ok",
      url: inboundUrl(),
    });
    expect(yes.body).toContain("this number is confirmed");
    await a.t.request("POST", `/v1/alerts/${alert.id}/resolve`, {
      token: h.daughter.token,
      body: { outcome: "false_alarm" },
    });
    await press(h, client);
    await eventually(async () => alertTextsTo(neighbour.phone).length === 1);
    await client.endAsync();
  });
});

describe("what people receive", () => {
  it("texts and pushes in the recipient's language, with times in their time zone", async () => {
    const h = await household(a, { daughterLanguage: "zh-Hans" });
    await a.t.request("PATCH", "/v1/me", {
      token: h.daughter.token,
      body: { timeZone: "Asia/Shanghai" },
    });
    await simpleChain(a, h);
    const client = await withDevice(h);
    await press(h, client);
    const [text] = await eventually(async () => alertTextsTo(h.daughter.phone));
    expect(text!.body).toContain("紧急");
    expect(text!.body).toContain(hhmm(a.t.clock.now(), "Asia/Shanghai"));
    const [pushed] = await eventually(async () => pushesTo(h.daughter.subscription?.endpoint));
    expect(String((pushed!.payload as { title: string }).title)).toContain("紧急求助");
    // The son keeps English.
    await advance(a.t, 2 * 60_000);
    const [sonText] = await eventually(async () => alertTextsTo(h.son.phone));
    expect(sonText!.body).toContain("pressed the SOS button");
    await client.endAsync();
  });

  it("a warning in someone's quiet hours goes as a silent push and no text", async () => {
    const h = await household(a, { kind: "motion_sensor" });
    await a.t.request("PATCH", "/v1/me", {
      token: h.daughter.token,
      body: {
        timeZone: "UTC",
        quietHours: {
          start: hhmm(new Date(a.t.clock.now().getTime() - 3_600_000), "UTC"),
          end: hhmm(new Date(a.t.clock.now().getTime() + 3_600_000), "UTC"),
        },
      },
    });
    await simpleChain(a, h);
    const client = await withDevice(h);
    await press(h, client, "no_motion");
    const alert = await openAlert(h);
    const [pushed] = await eventually(async () => pushesTo(h.daughter.subscription?.endpoint));
    expect(pushed!.urgency).toBe("low");
    await settle();
    expect(alertTextsTo(h.daughter.phone)).toHaveLength(0);
    const deliveries = await a.t.request("GET", `/v1/alerts/${alert.id}/deliveries`, {
      token: h.daughter.token,
    });
    expect(deliveries.body.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          channel: "sms",
          status: "skipped",
          reason: "quiet hours: no text for a warning",
        }),
      ]),
    );
    await client.endAsync();
  });
});

describe("a provider's on-call number", () => {
  it("is asked to confirm when the provider is verified and when it changes; a reply confirms it", async () => {
    const owner = await signUpFamily(a.t, { displayName: "Zhou Min" });
    const onCall = mobile();
    const p = await createProvider(a.t, owner.token, {
      onCall: { name: "Zhou Min", phone: onCall },
    });
    await idle(a.t);
    expect(textsTo(onCall)).toHaveLength(0); // not before an operator verified the provider

    const verified = await a.t.request("POST", `/v1/providers/${p.id}/status`, {
      token: operator.token,
      body: { status: "verified" },
    });
    expect(verified.status).toBe(200);
    const invite = await eventually(async () => textsTo(onCall)[0]);
    expect(invite.body).toContain("on-call person");
    expect((await phoneRow(onCall))?.confirmed_at).toBeNull();

    const reply = await a.twilio.sendInbound({
      from: onCall,
      to: KINCARE_NUMBER,
      body: "ok",
      url: inboundUrl(),
    });
    expect(reply.body).toContain("confirmed");
    expect((await phoneRow(onCall))?.confirmed_at).toBeTruthy();

    // A new number is asked again; the confirmed one is not asked twice.
    const next = mobile();
    const changed = await a.t.request("PATCH", `/v1/providers/${p.id}`, {
      token: owner.token,
      body: { onCall: { name: "Wu Fang", phone: next } },
    });
    expect(changed.status).toBe(200);
    await eventually(async () => textsTo(next)[0]);
    expect(textsTo(onCall)).toHaveLength(1);
  });
});

function phoneRow(phone: string) {
  return a.t.db
    .selectFrom("phone_numbers")
    .select("confirmed_at")
    .where("phone", "=", phone)
    .executeTakeFirst();
}
