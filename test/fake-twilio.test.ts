// The fake Twilio (test/helpers/fake-twilio.ts) driven by the real `twilio` SDK over a real socket:
// sends land as Twilio would record them, errors surface as the SDK's RestException, and the
// fake's signed webhooks pass (or, forged, fail) twilio.validateRequest.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeTwilio,
  startFakeTwilio,
  twilioClientFor,
  twilioErrors,
} from "./helpers/fake-twilio";

/** A tiny kincare stand-in that checks X-Twilio-Signature the way src/ will. */
interface Receiver {
  url: string;
  seen: { path: string; params: Record<string, string>; valid: boolean }[];
  close(): Promise<void>;
}

async function startReceiver(authToken: string): Promise<Receiver> {
  const seen: Receiver["seen"] = [];
  let base = "";
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => {
      raw += c;
    });
    req.on("end", () => {
      const params = Object.fromEntries(new URLSearchParams(raw));
      const signature = String(req.headers["x-twilio-signature"] ?? "");
      const valid = twilio.validateRequest(authToken, signature, base + req.url, params);
      seen.push({ path: req.url ?? "", params, valid });
      res.writeHead(valid ? 200 : 403, { "Content-Type": "text/xml" });
      res.end(valid ? "<Response><Message>Got it</Message></Response>" : "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("fake Twilio with the real twilio SDK", () => {
  let fake: FakeTwilio;
  let receiver: Receiver;

  beforeAll(async () => {
    fake = await startFakeTwilio();
    receiver = await startReceiver(fake.authToken);
  });
  afterAll(async () => {
    await fake.close();
    await receiver.close();
  });

  it("records a message created with a status callback and validity period", async () => {
    const client = twilioClientFor(fake);
    const statusCallback = `${receiver.url}/webhooks/twilio/status?alert=a1`;
    const msg = await client.messages.create({
      to: "+14155550101",
      from: "+14155550100",
      body: "SOS: Ada pressed her pendant",
      statusCallback,
      validityPeriod: 120,
    });
    expect(msg.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(msg.status).toBe("queued");
    expect(msg.to).toBe("+14155550101");
    expect(msg.accountSid).toBe(fake.accountSid);
    expect(msg.dateCreated).toBeInstanceOf(Date);

    const [sms] = await fake.waitForMessages(1);
    expect(sms).toMatchObject({
      sid: msg.sid,
      httpStatus: 201,
      to: "+14155550101",
      from: "+14155550100",
      body: "SOS: Ada pressed her pendant",
      statusCallback,
      validityPeriod: 120,
    });
    expect(sms!.receivedAt).toBeGreaterThan(0);
    expect(sms!.params.ValidityPeriod).toBe("120");

    const fetched = await client.messages(msg.sid).fetch();
    expect(fetched.body).toBe("SOS: Ada pressed her pendant");
  });

  it("answers 'accepted' with no From when a Messaging Service sends", async () => {
    const msg = await twilioClientFor(fake).messages.create({
      to: "+14155550102",
      messagingServiceSid: `MG${"0".repeat(32)}`,
      body: "hello",
    });
    expect(msg.status).toBe("accepted");
    expect(msg.from).toBeNull();
  });

  it("turns failNext into a RestException with Twilio's code, once", async () => {
    fake.failNext("+15005550001", twilioErrors.invalidTo);
    const client = twilioClientFor(fake);
    const send = () =>
      client.messages.create({ to: "+15005550001", from: "+14155550100", body: "x" });
    const err: any = await send().catch((e) => e);
    expect(err).toBeInstanceOf(twilio.RestException);
    expect(err).toMatchObject({ status: 400, code: 21211 });
    expect(err.moreInfo).toBe("https://www.twilio.com/docs/errors/21211");
    expect(fake.messages.at(-1)).toMatchObject({ sid: null, httpStatus: 400, errorCode: 21211 });

    fake.failNext((p) => p.Body === "opted", twilioErrors.optedOut);
    const optedOut: any = await client.messages
      .create({ to: "+14155550103", from: "+14155550100", body: "opted" })
      .catch((e) => e);
    expect(optedOut.code).toBe(21610);

    await expect(send()).resolves.toMatchObject({ status: "queued" });
  });

  it("rejects wrong credentials with 401 / 20003", async () => {
    const client = twilioClientFor({ ...fake, authToken: "wrong" });
    const err: any = await client.messages
      .create({ to: "+14155550101", from: "+14155550100", body: "x" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(twilio.RestException);
    expect(err).toMatchObject({ status: 401, code: 20003 });
  });

  it("also works through a custom httpClient that rewrites api.twilio.com", async () => {
    class ToFake extends twilio.RequestClient {
      override request<T>(opts: any) {
        return super.request<T>({
          ...opts,
          uri: opts.uri.replace("https://api.twilio.com", fake.url),
        });
      }
    }
    const client = twilio(fake.accountSid, fake.authToken, { httpClient: new ToFake() });
    const msg = await client.messages.create({ to: "+1415555104", from: "+1415555100", body: "y" });
    expect(msg.sid).toMatch(/^SM/);
  });

  it("signs status callbacks so validateRequest accepts them, and forged ones fail", async () => {
    const msg = await twilioClientFor(fake).messages.create({
      to: "+14155550105",
      from: "+14155550100",
      body: "z",
      statusCallback: `${receiver.url}/webhooks/twilio/status`,
    });
    expect(await fake.sendStatus(msg.sid, "delivered")).toBe(200);
    expect(await fake.sendStatus(msg.sid, "undelivered")).toBe(200);
    expect(receiver.seen.at(-1)!.params).toMatchObject({
      MessageSid: msg.sid,
      MessageStatus: "undelivered",
      ErrorCode: "30003",
      AccountSid: fake.accountSid,
      To: "+14155550105",
      From: "+14155550100",
    });
    expect(await fake.sendStatus(msg.sid, "sent", {}, { forgeSignature: true })).toBe(403);
    expect((await twilioClientFor(fake).messages(msg.sid).fetch()).status).toBe("sent");
  });

  it("signs inbound SMS webhooks and returns the TwiML answer", async () => {
    const url = `${receiver.url}/webhooks/twilio/inbound`;
    const ok = await fake.sendInbound({
      from: "+14155550101",
      to: "+14155550100",
      body: "OK",
      url,
    });
    expect(ok).toEqual({ status: 200, body: "<Response><Message>Got it</Message></Response>" });
    expect(receiver.seen.at(-1)!.params).toMatchObject({
      From: "+14155550101",
      Body: "OK",
      NumMedia: "0",
    });
    expect(receiver.seen.at(-1)!.params.MessageSid).toMatch(/^SM[0-9a-f]{32}$/);

    const forged = await fake.sendInbound({
      from: "+14155550101",
      to: "+14155550100",
      body: "OK",
      url,
      forgeSignature: true,
    });
    expect(forged.status).toBe(403);
  });
});
