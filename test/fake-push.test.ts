// The fake Web Push service (test/helpers/fake-push.ts) driven by the real `web-push` library over
// real TLS (trusted through an https.Agent({ ca }), never by turning checks off): payloads
// decrypt exactly, headers are seen, bad VAPID is refused, and failNext statuses surface as
// WebPushError.
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import webpush, { WebPushError } from "web-push";
import { encryptForTest, type FakePush, startFakePush } from "./helpers/fake-push";

describe("fake push service with the real web-push library", () => {
  let fake: FakePush;
  const vapid = webpush.generateVAPIDKeys();
  const vapidDetails = { subject: "mailto:ops@kincare.test", ...vapid };

  beforeAll(async () => {
    fake = await startFakePush();
  });
  afterAll(async () => {
    await fake.close();
  });

  const send = (sub: webpush.PushSubscription, payload: unknown, extra = {}) =>
    webpush.sendNotification(sub, JSON.stringify(payload), {
      vapidDetails,
      TTL: 60,
      urgency: "high",
      agent: fake.agent,
      ...extra,
    });

  it("decrypts the exact payload and records TTL, urgency and topic", async () => {
    const sub = await fake.subscribe();
    expect(sub.endpoint).toMatch(new RegExp(`^${fake.origin}/push/`));
    const payload = { kind: "sos", alertId: "a1", text: "Ada pressed her pendant ✓" };
    const res = await send(sub, payload, { topic: "sos-a1" });
    expect(res.statusCode).toBe(201);

    const [got] = await fake.waitFor(1);
    expect(got).toMatchObject({
      endpoint: sub.endpoint,
      payload,
      ttl: 60,
      urgency: "high",
      topic: "sos-a1",
      vapidKey: vapid.publicKey,
      vapidSubject: "mailto:ops@kincare.test",
    });
    expect(got!.receivedAt).toBeGreaterThan(0);
  });

  it("rejects a VAPID JWT that does not verify with the k key", async () => {
    const sub = await fake.subscribe();
    const other = webpush.generateVAPIDKeys();
    const err: any = await send(
      sub,
      { x: 1 },
      {
        vapidDetails: { ...vapidDetails, publicKey: other.publicKey },
      },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(WebPushError);
    expect(err.statusCode).toBe(403);
  });

  it("surfaces failNext(endpoint, 410) as a WebPushError, once", async () => {
    const sub = await fake.subscribe();
    fake.failNext(sub.endpoint, 410);
    const err: any = await send(sub, { x: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(WebPushError);
    expect(err).toMatchObject({ statusCode: 410, endpoint: sub.endpoint });
    await expect(send(sub, { x: 2 })).resolves.toMatchObject({ statusCode: 201 });
  });

  it("answers 404 for an unknown subscription", async () => {
    const sub = await fake.subscribe();
    const gone = { ...sub, endpoint: `${fake.origin}/push/nobody` };
    const err: any = await send(gone, { x: 1 }).catch((e) => e);
    expect(err.statusCode).toBe(404);
  });

  it("refuses a client that does not trust the certificate", async () => {
    const sub = await fake.subscribe();
    const err: any = await webpush.sendNotification(sub, "x", { vapidDetails }).catch((e) => e);
    expect(err).not.toBeInstanceOf(WebPushError);
    expect(String(err.code)).toMatch(/CERT|SELF_SIGNED/);
  });

  it("decrypts payloads spread over several aes128gcm records", async () => {
    const sub = await fake.subscribe();
    const text = "é".repeat(150); // 300 bytes over records of 64 bytes (47 of plaintext each)
    const headers = {
      ...webpush.getVapidHeaders(
        fake.origin,
        vapidDetails.subject,
        vapid.publicKey,
        vapid.privateKey,
        "aes128gcm",
      ),
      TTL: "0",
      "Content-Encoding": "aes128gcm",
    };
    const status = await post(sub.endpoint, headers, encryptForTest(Buffer.from(text), sub, 64));
    expect(status).toBe(201);
    expect(fake.received.at(-1)).toMatchObject({ payload: text, ttl: 0, urgency: null });
  });

  it("refuses a JWT for another audience, a missing TTL and another content encoding", async () => {
    const sub = await fake.subscribe();
    const body = encryptForTest(Buffer.from("{}"), sub);
    const auth = (aud: string) =>
      webpush.getVapidHeaders(
        aud,
        vapidDetails.subject,
        vapid.publicKey,
        vapid.privateKey,
        "aes128gcm",
      );
    const ok = { TTL: "10", "Content-Encoding": "aes128gcm" };
    expect(await post(sub.endpoint, { ...auth("https://push.example"), ...ok }, body)).toBe(403);
    expect(await post(sub.endpoint, { ...ok }, body)).toBe(401);
    expect(
      await post(sub.endpoint, { ...auth(fake.origin), "Content-Encoding": "aes128gcm" }, body),
    ).toBe(400);
    expect(
      await post(
        sub.endpoint,
        { ...auth(fake.origin), TTL: "10", "Content-Encoding": "aesgcm" },
        body,
      ),
    ).toBe(415);
    expect(await post(sub.endpoint, { ...auth(fake.origin), ...ok }, body)).toBe(201);
  });

  function post(url: string, headers: Record<string, string>, body: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: "POST", headers, agent: fake.agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      });
      req.on("error", reject);
      req.end(body);
    });
  }
});
