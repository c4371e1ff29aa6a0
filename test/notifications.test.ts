// The notification service outside alerts: phone confirmation, password reset by texted code,
// invitations by text, push subscriptions, and opting out with STOP. Real twilio SDK and
// web-push library against the local fakes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Alerting,
  eventually,
  KINCARE_NUMBER,
  mobile,
  reachablePerson,
  startAlerting,
} from "./helpers/alerting";
import { login, PASSWORD, signUpFamily } from "./helpers/factories";
import { createResident } from "./helpers/residents.factory";

let a: Alerting;
beforeAll(async () => {
  a = await startAlerting({ mqtt: false });
});
afterAll(() => a.close());

const textsTo = (phone: string) => a.twilio.messages.filter((m) => m.to === phone && m.sid);
const settle = () => new Promise((r) => setTimeout(r, 300));

describe("confirming a phone number", () => {
  it("takes the texted code; wrong codes count, and five of them end it", async () => {
    const phone = mobile();
    const me = await signUpFamily(a.t, { phone });
    const before = await a.t.request("GET", "/v1/me/phone", { token: me.token });
    expect(before.body).toMatchObject({ phone, confirmed: false });
    await a.t.request("POST", "/v1/me/phone/confirmation", { token: me.token });
    const text = await eventually(async () => textsTo(phone)[0]);
    const code = /\b(\d{6})\b/.exec(text.body)![1]!;
    const wrong = code === "000000" ? "111111" : "000000";
    const bad = await a.t.request("POST", "/v1/me/phone/confirm", {
      token: me.token,
      body: { code: wrong },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("validation_failed");
    for (let i = 0; i < 4; i++) {
      await a.t.request("POST", "/v1/me/phone/confirm", { token: me.token, body: { code: wrong } });
    }
    const locked = await a.t.request("POST", "/v1/me/phone/confirm", {
      token: me.token,
      body: { code },
    });
    expect(locked.body.error?.code, JSON.stringify(locked.body)).toBe("too_many_attempts");
    const noPhone = await signUpFamily(a.t);
    const refused = await a.t.request("POST", "/v1/me/phone/confirmation", {
      token: noPhone.token,
    });
    expect(refused.body.error?.code, JSON.stringify(refused.body)).toBe("invalid_state");
  });
});

describe("password reset by a texted code", () => {
  it("texts a code to a confirmed number only, and the code sets a new password and ends every session", async () => {
    const me = await reachablePerson(a, { push: false });
    const unknown = mobile();
    const nobody = await a.t.request("POST", "/v1/auth/password-reset/sms", {
      body: { phone: unknown },
    });
    expect(nobody.status).toBe(202);

    const asked = await a.t.request("POST", "/v1/auth/password-reset/sms", {
      body: { phone: me.phone },
    });
    expect(asked.status).toBe(202);
    const text = await eventually(async () =>
      textsTo(me.phone).find((m) => m.body.includes("reset code")),
    );
    const code = /\b(\d{6})\b/.exec(text.body)![1]!;
    await settle();
    expect(textsTo(unknown)).toHaveLength(0);

    const wrong = await a.t.request("POST", "/v1/auth/password-reset/sms/complete", {
      body: {
        phone: me.phone,
        code: code === "123456" ? "654321" : "123456",
        newPassword: "a brand new password",
      },
    });
    expect(wrong.body.error.code).toBe("reset_token_invalid");
    const done = await a.t.request("POST", "/v1/auth/password-reset/sms/complete", {
      body: { phone: me.phone, code, newPassword: "a brand new password" },
    });
    expect(done.status).toBe(204);
    const old = await a.t.request("GET", "/v1/me", { token: me.token });
    expect(old.status).toBe(401);
    await expect(login(a.t, me.email, PASSWORD)).rejects.toThrow();
    await login(a.t, me.email, "a brand new password");
    const again = await a.t.request("POST", "/v1/auth/password-reset/sms/complete", {
      body: { phone: me.phone, code, newPassword: "another new password" },
    });
    expect(again.body.error.code).toBe("reset_token_invalid");
    // The code does not stay in the delivery record once sent.
    const rows = await a.t.db
      .selectFrom("deliveries")
      .select("message")
      .where("phone", "=", me.phone)
      .execute();
    expect(rows.map((r) => r.message).join()).not.toContain(code);
  });
});

describe("invitations by text", () => {
  it("texts the invitation link to a phone, and the link is not kept once sent", async () => {
    const daughter = await signUpFamily(a.t);
    const residentId = (await createResident(a.t, daughter.token, { relationship: "daughter" })).id;
    const phone = mobile();
    const inv = await a.t.request("POST", `/v1/residents/${residentId}/invitations`, {
      token: daughter.token,
      body: { phone, relationship: "nephew", level: "member" },
    });
    expect(inv.status).toBe(201);
    const text = await eventually(async () => textsTo(phone)[0]);
    expect(text.body).toContain(inv.body.link);
    await settle();
    const rows = await a.t.db
      .selectFrom("deliveries")
      .select(["message", "status"])
      .where("phone", "=", phone)
      .execute();
    expect(rows[0]!.status).toBe("queued");
    expect(rows[0]!.message).not.toContain(inv.body.token);
  });
});

describe("push subscriptions", () => {
  it("are registered, listed without their secret endpoint, and removed", async () => {
    const me = await signUpFamily(a.t);
    const key = await a.t.request("GET", "/v1/push/vapid-public-key", { token: me.token });
    expect(key.body.publicKey).toMatch(/^[A-Za-z0-9_-]{80,}$/);
    const sub = await a.push.subscribe();
    const added = await a.t.request("POST", "/v1/push/subscriptions", {
      token: me.token,
      body: sub,
    });
    expect(added.status).toBe(201);
    expect(JSON.stringify(added.body)).not.toContain(sub.endpoint);
    const list = await a.t.request("GET", "/v1/push/subscriptions", { token: me.token });
    expect(list.body.items).toHaveLength(1);
    const other = await signUpFamily(a.t);
    const notMine = await a.t.request("DELETE", `/v1/push/subscriptions/${added.body.id}`, {
      token: other.token,
    });
    expect(notMine.status).toBe(404);
    const removed = await a.t.request("DELETE", `/v1/push/subscriptions/${added.body.id}`, {
      token: me.token,
    });
    expect(removed.status).toBe(204);
    const bad = await a.t.request("POST", "/v1/push/subscriptions", {
      token: me.token,
      body: { endpoint: "http://insecure.example/push", keys: sub.keys },
    });
    expect(bad.body.error.code).toBe("validation_failed");
  });
});

describe("opting out", () => {
  it("STOP marks the number opted out (Twilio answers it), START opts back in", async () => {
    const me = await reachablePerson(a, { push: false });
    const stop = await a.twilio.sendInbound({
      from: me.phone,
      to: KINCARE_NUMBER,
      body: "STOP",
      url: `${a.t.config.PUBLIC_URL}/v1/webhooks/twilio/inbound`,
    });
    expect(stop.status).toBe(200);
    expect(stop.body).not.toContain("<Message>");
    let status = await a.t.request("GET", "/v1/me/phone", { token: me.token });
    expect(status.body.optedOut).toBe(true);
    await a.twilio.sendInbound({
      from: me.phone,
      to: KINCARE_NUMBER,
      body: "start",
      url: `${a.t.config.PUBLIC_URL}/v1/webhooks/twilio/inbound`,
    });
    status = await a.t.request("GET", "/v1/me/phone", { token: me.token });
    expect(status.body).toMatchObject({ optedOut: false, confirmed: true });
  });
});
