// A fake Twilio REST API for tests and `npm run bench:sos`, on 127.0.0.1 over plain HTTP, so the
// real `twilio` SDK talks to it over a real socket.
//
// What it fakes:
//  - POST /2010-04-01/Accounts/{AccountSid}/Messages.json, form-urlencoded as twilio-node sends it.
//    HTTP basic auth (accountSid:authToken) is checked: 401 in Twilio's error JSON when wrong.
//    Answers 201 with a Twilio-shaped message resource (sid "SM" + 32 hex, status "queued", or
//    "accepted" when only a MessagingServiceSid is given, as Twilio does).
//  - GET .../Messages/{Sid}.json: the message as the fake knows it now (after sendStatus).
//  - failNext(): the next matching send answers a Twilio error JSON, so the SDK throws a
//    RestException with that status and code (21211 invalid To, 21610 opted out, 429...).
//  - sendStatus(): POSTs a status callback to the message's StatusCallback URL, and sendInbound()
//    an inbound SMS webhook; both are signed with X-Twilio-Signature exactly as
//    twilio.validateRequest(authToken, signature, url, params) checks it (or forged, on request).
//
// Pointing the SDK at it (twilio-node 6 has no base URL option; every REST "domain" has a public,
// mutable `baseUrl` that is read on each request, see base/Domain.js absoluteUrl()):
//
//   const client = twilio(accountSid, authToken);
//   client.api.baseUrl = fake.url;      // Messages live in the `api` domain (api.twilio.com)
//
// twilioClientFor() below does exactly that. The other route, a custom `httpClient` that rewrites
// "https://api.twilio.com" in every request URI, is shown in test/fake-twilio.test.ts.
// Caveat for both: TWILIO_REGION / TWILIO_EDGE (env or options) would rewrite the host name.
import { createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import twilio from "twilio";

export interface TwilioError {
  status: number;
  code: number;
  message: string;
}

/** Error answers Twilio really gives, for failNext(). */
export const twilioErrors = {
  invalidTo: {
    status: 400,
    code: 21211,
    message: "The 'To' number is not a valid phone number.",
  },
  optedOut: {
    status: 400,
    code: 21610,
    message: "Attempt to send to unsubscribed recipient",
  },
  tooManyRequests: { status: 429, code: 20429, message: "Too Many Requests" },
  serverError: { status: 500, code: 20500, message: "An internal server error has occurred" },
} satisfies Record<string, TwilioError>;

/** One request to Messages.json, accepted or not. */
export interface FakeSms {
  /** "SM..." when accepted, null when the fake answered an error. */
  sid: string | null;
  httpStatus: number;
  /** The Twilio error code answered, null when accepted. */
  errorCode: number | null;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  statusCallback: string | null;
  validityPeriod: number | null;
  /** Every form parameter as sent (the last value when repeated). */
  params: Record<string, string>;
  /** Current status: "queued"/"accepted" at creation, then whatever sendStatus() last sent. */
  status: string;
  receivedAt: number;
  receivedAtMs: number;
}

export type SmsMatcher = string | ((params: Record<string, string>) => boolean);

export interface InboundSms {
  from: string;
  to: string;
  body: string;
  /** The kincare webhook URL, exactly as configured at Twilio (it is part of the signature). */
  url: string;
  forgeSignature?: boolean;
  /** Extra or overriding form parameters. */
  params?: Record<string, string>;
}

export interface FakeTwilio {
  /** Base URL to give the SDK, e.g. "http://127.0.0.1:41234". */
  url: string;
  accountSid: string;
  authToken: string;
  messages: FakeSms[];
  /** Resolves with `messages` once at least n requests reached Messages.json. */
  waitForMessages(n: number, timeoutMs?: number): Promise<FakeSms[]>;
  /** The next send whose To equals `to` (or matching the predicate) answers this error. */
  failNext(match: SmsMatcher, error: TwilioError): void;
  /** POSTs a signed status callback for `sid`; resolves with the HTTP status answered. */
  sendStatus(
    sid: string,
    status: string,
    extra?: Record<string, string>,
    opts?: { forgeSignature?: boolean },
  ): Promise<number>;
  /** POSTs a signed inbound SMS webhook; resolves with the status and the TwiML text answered. */
  sendInbound(sms: InboundSms): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

const API_VERSION = "2010-04-01";

/** The X-Twilio-Signature Twilio sends: HMAC-SHA1(authToken, url + sorted key+value pairs). */
export function twilioSignature(
  authToken: string,
  url: string,
  params: Record<string, string>,
): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => acc + key + params[key], url);
  return createHmac("sha1", authToken).update(Buffer.from(data, "utf-8")).digest("base64");
}

/** A real twilio SDK client whose `api` domain (Messages) points at the fake. */
export function twilioClientFor(fake: Pick<FakeTwilio, "url" | "accountSid" | "authToken">) {
  const client = twilio(fake.accountSid, fake.authToken);
  client.api.baseUrl = fake.url;
  return client;
}

export async function startFakeTwilio(
  opts: { accountSid?: string; authToken?: string } = {},
): Promise<FakeTwilio> {
  const accountSid = opts.accountSid ?? `AC${hex(16)}`;
  const authToken = opts.authToken ?? hex(16);
  const state: State = { accountSid, authToken, messages: [], failures: [], waiters: new Set() };
  const server = createServer((req, res) => {
    handle(state, req, res).catch((err) => sendJson(res, 500, { message: String(err) }));
  });
  // Keep idle connections as real services do: Node's 5 s default races the SDKs' keep-alive
  // agents (a send on a socket being closed fails with ECONNRESET and waits for a retry).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    messages: state.messages,
    waitForMessages: (n, timeoutMs = 5_000) => waitForCount(state, n, timeoutMs),
    failNext: (match, error) => state.failures.push({ match, error }),
    sendStatus: (sid, status, extra, o) => sendStatus(state, sid, status, extra, o),
    sendInbound: (sms) => sendInbound(state, sms),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface State {
  accountSid: string;
  authToken: string;
  messages: FakeSms[];
  failures: { match: SmsMatcher; error: TwilioError }[];
  waiters: Set<() => void>;
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

// ---- the REST side -------------------------------------------------------------------------

async function handle(state: State, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const receivedAt = performance.now();
  const receivedAtMs = Date.now();
  const raw = await readBody(req);
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages(?:\/(SM[0-9a-f]{32}))?\.json$/.exec(path);
  if (!m) return twilioError(res, { status: 404, code: 20404, message: notFound(path) });
  if (!authorized(state, req.headers.authorization)) {
    return twilioError(res, { status: 401, code: 20003, message: "Authenticate" });
  }
  if (m[1] !== state.accountSid) {
    return twilioError(res, { status: 404, code: 20404, message: notFound(path) });
  }
  if (req.method === "GET" && m[2]) return fetchMessage(state, m[2], res);
  if (req.method !== "POST" || m[2]) {
    return twilioError(res, { status: 405, code: 20004, message: "Method not allowed" });
  }
  const params = Object.fromEntries(new URLSearchParams(raw));
  createMessage(state, params, { receivedAt, receivedAtMs }, res);
}

function notFound(path: string): string {
  return `The requested resource ${path} was not found`;
}

function authorized(state: State, header: string | undefined): boolean {
  const expected = `Basic ${Buffer.from(`${state.accountSid}:${state.authToken}`).toString("base64")}`;
  return header === expected;
}

function createMessage(
  state: State,
  params: Record<string, string>,
  times: { receivedAt: number; receivedAtMs: number },
  res: ServerResponse,
): void {
  const error = validationError(params) ?? takeFailure(state, params);
  const onlyService = !params.From && Boolean(params.MessagingServiceSid);
  const sms: FakeSms = {
    sid: error ? null : `SM${hex(16)}`,
    httpStatus: error ? error.status : 201,
    errorCode: error ? error.code : null,
    to: params.To ?? "",
    from: params.From ?? null,
    messagingServiceSid: params.MessagingServiceSid ?? null,
    body: params.Body ?? "",
    statusCallback: params.StatusCallback ?? null,
    validityPeriod: params.ValidityPeriod ? Number(params.ValidityPeriod) : null,
    params,
    status: onlyService ? "accepted" : "queued",
    ...times,
  };
  state.messages.push(sms);
  for (const wake of state.waiters) wake();
  if (error) twilioError(res, error);
  else sendJson(res, 201, messageResource(state, sms, times.receivedAtMs));
}

/** What Twilio itself refuses before any failNext() rule applies. */
function validationError(params: Record<string, string>): TwilioError | null {
  if (!params.To) return { status: 400, code: 21604, message: "A 'To' phone number is required." };
  if (!params.From && !params.MessagingServiceSid) {
    return { status: 400, code: 21603, message: "A 'From' phone number is required." };
  }
  if (!params.Body && !params.MediaUrl && !params.ContentSid) {
    return { status: 400, code: 21602, message: "Message body is required." };
  }
  return null;
}

function takeFailure(state: State, params: Record<string, string>): TwilioError | null {
  const i = state.failures.findIndex(({ match }) =>
    typeof match === "string" ? params.To === match : match(params),
  );
  if (i < 0) return null;
  const [rule] = state.failures.splice(i, 1);
  return rule!.error;
}

function fetchMessage(state: State, sid: string, res: ServerResponse): void {
  const sms = state.messages.find((s) => s.sid === sid);
  const path = `/2010-04-01/Accounts/${state.accountSid}/Messages/${sid}.json`;
  if (sms) sendJson(res, 200, messageResource(state, sms, sms.receivedAtMs));
  else twilioError(res, { status: 404, code: 20404, message: notFound(path) });
}

function messageResource(state: State, sms: FakeSms, createdMs: number) {
  const uri = `/${API_VERSION}/Accounts/${state.accountSid}/Messages/${sms.sid}`;
  const created = new Date(createdMs).toUTCString().replace("GMT", "+0000");
  return {
    account_sid: state.accountSid,
    api_version: API_VERSION,
    body: sms.body,
    date_created: created,
    date_sent: null,
    date_updated: created,
    direction: "outbound-api",
    error_code: null,
    error_message: null,
    from: sms.from,
    messaging_service_sid: sms.messagingServiceSid,
    num_media: "0",
    num_segments: "1",
    price: null,
    price_unit: "USD",
    sid: sms.sid,
    status: sms.status,
    subresource_uris: { media: `${uri}/Media.json` },
    to: sms.to,
    uri: `${uri}.json`,
  };
}

function twilioError(res: ServerResponse, error: TwilioError): void {
  sendJson(res, error.status, {
    code: error.code,
    message: error.message,
    more_info: `https://www.twilio.com/docs/errors/${error.code}`,
    status: error.status,
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf-8")));
    req.on("error", reject);
  });
}

function waitForCount(state: State, n: number, timeoutMs: number): Promise<FakeSms[]> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (state.messages.length < n) return;
      done();
      resolve(state.messages);
    };
    const timer = setTimeout(() => {
      done();
      reject(
        new Error(`fake Twilio: ${state.messages.length}/${n} messages after ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      state.waiters.delete(check);
    };
    state.waiters.add(check);
    check();
  });
}

// ---- the webhook side: Twilio calling kincare ------------------------------------------------

async function sendStatus(
  state: State,
  sid: string,
  status: string,
  extra: Record<string, string> = {},
  opts: { forgeSignature?: boolean } = {},
): Promise<number> {
  const sms = state.messages.find((s) => s.sid === sid);
  if (!sms) throw new Error(`fake Twilio: no message ${sid}`);
  if (!sms.statusCallback) throw new Error(`fake Twilio: message ${sid} has no StatusCallback`);
  sms.status = status;
  const params: Record<string, string> = {
    AccountSid: state.accountSid,
    ApiVersion: API_VERSION,
    MessageSid: sid,
    MessageStatus: status,
    SmsSid: sid,
    SmsStatus: status,
    To: sms.to,
    ...(sms.from ? { From: sms.from } : {}),
    ...(sms.messagingServiceSid ? { MessagingServiceSid: sms.messagingServiceSid } : {}),
    ...(status === "failed" || status === "undelivered" ? { ErrorCode: "30003" } : {}),
    ...extra,
  };
  const res = await postSigned(state, sms.statusCallback, params, opts.forgeSignature);
  return res.status;
}

async function sendInbound(state: State, sms: InboundSms) {
  const sid = `SM${hex(16)}`;
  const params: Record<string, string> = {
    AccountSid: state.accountSid,
    ApiVersion: API_VERSION,
    Body: sms.body,
    From: sms.from,
    MessageSid: sid,
    NumMedia: "0",
    NumSegments: "1",
    SmsMessageSid: sid,
    SmsSid: sid,
    SmsStatus: "received",
    To: sms.to,
    ...sms.params,
  };
  return postSigned(state, sms.url, params, sms.forgeSignature);
}

async function postSigned(
  state: State,
  url: string,
  params: Record<string, string>,
  forge = false,
): Promise<{ status: number; body: string }> {
  const key = forge ? `${state.authToken}-forged` : state.authToken;
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      "X-Twilio-Signature": twilioSignature(key, url, params),
      "I-Twilio-Idempotency-Token": randomBytes(16).toString("hex"),
      "User-Agent": "TwilioProxy/1.1",
    },
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.status, body: await res.text() };
}
