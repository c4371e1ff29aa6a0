// A fake Web Push service (the thing behind a browser subscription's endpoint) for tests and
// `npm run bench:sos`, on https://127.0.0.1, so the real `web-push` library talks to it over TLS.
//
// What it fakes and checks, per RFC 8030 / 8291 / 8292:
//  - subscribe() makes a browser-side subscription: P-256 key pair, 16-byte auth secret, endpoint
//    https://127.0.0.1:PORT/push/{id}.
//  - POST /push/{id}: `Authorization: vapid t=<JWT>, k=<key>` with an ES256 JWT signed by k,
//    aud = this origin, exp in the future and at most 24 h ahead, sub present (401 if missing or
//    malformed, 403 if it does not verify); `TTL` header and `Content-Encoding: aes128gcm`
//    required (400 / 415); the body is decrypted (aes128gcm, RFC 8188 records) with the
//    subscriber's private key and recorded in `received`; answers 201.
//  - failNext(endpoint, 410) answers that status once (410 Gone, 404, 429, 500...); an unknown
//    subscription id answers 404.
//
// TLS: a fresh self-signed certificate for IP 127.0.0.1 (openssl, once per process). Trust it with
// the returned `agent` (an https.Agent({ ca })), as web-push's `agent` option, or write `ca` to a
// file for NODE_EXTRA_CA_CERTS in a child process. Nothing here turns TLS checks off.
import { execFile } from "node:child_process";
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHmac,
  createPublicKey,
  type ECDH,
  randomBytes,
  randomUUID,
  verify,
} from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Agent, createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export interface PushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface ReceivedPush {
  subscriptionId: string;
  endpoint: string;
  /** The decrypted payload, parsed as JSON when it is JSON. */
  payload: unknown;
  ttl: number;
  urgency: string | null;
  topic: string | null;
  /** The VAPID public key (k=) and JWT subject the sender used. */
  vapidKey: string;
  vapidSubject: string;
  receivedAt: number;
  receivedAtMs: number;
}

export type EndpointMatcher = string | ((endpoint: string) => boolean);

export interface FakePush {
  /** "https://127.0.0.1:PORT": the VAPID audience. */
  origin: string;
  subscribe(): Promise<PushSubscription>;
  received: ReceivedPush[];
  /** Resolves with `received` once at least n pushes were accepted. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedPush[]>;
  /** The next push to that endpoint (or matching the predicate) answers `status`. */
  failNext(match: EndpointMatcher, status: number): void;
  /** Trusts this fake's certificate: pass as web-push's `agent` option. */
  agent: Agent;
  /** The certificate, PEM, for your own https.Agent({ ca }) or NODE_EXTRA_CA_CERTS. */
  ca: string;
  close(): Promise<void>;
}

interface Subscriber {
  id: string;
  endpoint: string;
  ecdh: ECDH;
  publicKey: Buffer;
  auth: Buffer;
}

interface State {
  origin: string;
  subscribers: Map<string, Subscriber>;
  received: ReceivedPush[];
  failures: { match: EndpointMatcher; status: number }[];
  waiters: Set<() => void>;
}

export async function startFakePush(): Promise<FakePush> {
  const { key, cert } = await selfSignedCert();
  const state: State = {
    origin: "",
    subscribers: new Map(),
    received: [],
    failures: [],
    waiters: new Set(),
  };
  const server = createServer({ key, cert }, (req, res) => {
    handle(state, req, res).catch((err) => answer(res, 500, String(err)));
  });
  // Keep idle connections as real services do: Node's 5 s default races the SDKs' keep-alive
  // agents (a send on a socket being closed fails with ECONNRESET and waits for a retry).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agent = new Agent({ ca: cert, keepAlive: true });
  return {
    origin: state.origin,
    subscribe: async () => subscribe(state),
    received: state.received,
    waitFor: (n, timeoutMs = 5_000) => waitForCount(state, n, timeoutMs),
    failNext: (match, status) => state.failures.push({ match, status }),
    agent,
    ca: cert,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function subscribe(state: State): PushSubscription {
  const id = randomUUID();
  const ecdh = createECDH("prime256v1");
  const publicKey = ecdh.generateKeys();
  const auth = randomBytes(16);
  const endpoint = `${state.origin}/push/${id}`;
  state.subscribers.set(id, { id, endpoint, ecdh, publicKey, auth });
  return {
    endpoint,
    keys: { p256dh: publicKey.toString("base64url"), auth: auth.toString("base64url") },
  };
}

// ---- the push endpoint ------------------------------------------------------------------------

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function handle(state: State, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const receivedAt = performance.now();
  const receivedAtMs = Date.now();
  const body = await readBody(req);
  const m = /^\/push\/([^/?]+)$/.exec(req.url ?? "");
  const sub = m ? state.subscribers.get(m[1]!) : undefined;
  if (req.method !== "POST" || !sub) return answer(res, 404, "no such subscription");
  const failure = takeFailure(state, sub.endpoint);
  if (failure) return answer(res, failure, `failNext(${failure})`);
  try {
    const vapid = checkVapid(req.headers.authorization, state.origin);
    const ttl = checkHeaders(req);
    const payload = parsePayload(decryptAes128gcm(body, sub));
    state.received.push({
      subscriptionId: sub.id,
      endpoint: sub.endpoint,
      payload,
      ttl,
      urgency: header(req, "urgency"),
      topic: header(req, "topic"),
      vapidKey: vapid.key,
      vapidSubject: vapid.subject,
      receivedAt,
      receivedAtMs,
    });
    for (const wake of state.waiters) wake();
    res.setHeader("Location", `${state.origin}/message/${randomUUID()}`);
    answer(res, 201, "");
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    answer(res, err.status, err.message);
  }
}

function takeFailure(state: State, endpoint: string): number | null {
  const i = state.failures.findIndex(({ match }) =>
    typeof match === "string" ? match === endpoint : match(endpoint),
  );
  if (i < 0) return null;
  return state.failures.splice(i, 1)[0]!.status;
}

function header(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  return typeof v === "string" ? v : null;
}

function checkHeaders(req: IncomingMessage): number {
  const ttl = header(req, "ttl");
  if (ttl === null || !/^\d+$/.test(ttl)) throw new Refusal(400, "TTL header required");
  if (header(req, "content-encoding") !== "aes128gcm") {
    throw new Refusal(415, "Content-Encoding must be aes128gcm");
  }
  return Number(ttl);
}

/** RFC 8292: `vapid t=<ES256 JWT>, k=<uncompressed P-256 public key, base64url>`. */
function checkVapid(
  authorization: string | undefined,
  origin: string,
): { key: string; subject: string } {
  const m = /^vapid\s+t=([^,\s]+)\s*,\s*k=([A-Za-z0-9_-]+)\s*$/i.exec(authorization ?? "");
  if (!m) throw new Refusal(401, "Authorization: vapid t=..., k=... required");
  const [, jwt, key] = m as unknown as [string, string, string];
  const parts = jwt.split(".");
  if (parts.length !== 3) throw new Refusal(401, "malformed JWT");
  const [head, claims, signature] = parts as [string, string, string];
  if (decodeJson(head)?.alg !== "ES256") throw new Refusal(401, "JWT alg must be ES256");
  if (!verifiesEs256(`${head}.${claims}`, signature, key)) {
    throw new Refusal(403, "VAPID signature does not verify with k");
  }
  const c = decodeJson(claims) ?? {};
  const now = Date.now() / 1000;
  if (c.aud !== origin) throw new Refusal(403, `JWT aud must be ${origin}`);
  if (typeof c.exp !== "number" || c.exp <= now) throw new Refusal(403, "JWT expired");
  if (c.exp > now + 24 * 3600) throw new Refusal(403, "JWT exp more than 24 h ahead");
  if (typeof c.sub !== "string" || !c.sub) throw new Refusal(403, "JWT sub required");
  return { key, subject: c.sub };
}

function decodeJson(b64url: string): Record<string, any> | null {
  try {
    return JSON.parse(Buffer.from(b64url, "base64url").toString("utf-8"));
  } catch {
    return null;
  }
}

function verifiesEs256(data: string, signature: string, rawKey: string): boolean {
  const point = Buffer.from(rawKey, "base64url");
  if (point.length !== 65 || point[0] !== 0x04) return false;
  try {
    const key = createPublicKey({
      format: "jwk",
      key: {
        kty: "EC",
        crv: "P-256",
        x: point.subarray(1, 33).toString("base64url"),
        y: point.subarray(33).toString("base64url"),
      },
    });
    const sig = Buffer.from(signature, "base64url");
    return verify("sha256", Buffer.from(data), { key, dsaEncoding: "ieee-p1363" }, sig);
  } catch {
    return false;
  }
}

// ---- aes128gcm (RFC 8188) with Web Push keys (RFC 8291) ---------------------------------------

function hkdf(salt: Buffer, ikm: Buffer, info: Buffer, length: number): Buffer {
  const prk = createHmac("sha256", salt).update(ikm).digest();
  return createHmac("sha256", prk)
    .update(Buffer.concat([info, Buffer.from([1])]))
    .digest()
    .subarray(0, length);
}

function decryptAes128gcm(body: Buffer, sub: Subscriber): Buffer {
  if (body.length < 21) throw new Refusal(400, "body shorter than the aes128gcm header");
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const senderKey = body.subarray(21, 21 + idlen);
  if (idlen !== 65 || rs < 18) throw new Refusal(400, "bad aes128gcm header");
  let ecdhSecret: Buffer;
  try {
    ecdhSecret = sub.ecdh.computeSecret(senderKey);
  } catch {
    throw new Refusal(400, "keyid is not a P-256 public key");
  }
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), sub.publicKey, senderKey]);
  const ikm = hkdf(sub.auth, ecdhSecret, keyInfo, 32);
  const cek = hkdf(salt, ikm, Buffer.from("Content-Encoding: aes128gcm\0"), 16);
  const nonce = hkdf(salt, ikm, Buffer.from("Content-Encoding: nonce\0"), 12);
  return decryptRecords(body.subarray(21 + idlen), rs, cek, nonce);
}

function decryptRecords(ciphertext: Buffer, rs: number, cek: Buffer, nonce: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let seq = 0, at = 0; at < ciphertext.length; seq++, at += rs) {
    const record = ciphertext.subarray(at, at + rs);
    const last = at + rs >= ciphertext.length;
    out.push(unpad(decryptRecord(record, cek, recordNonce(nonce, seq)), last));
  }
  return Buffer.concat(out);
}

function recordNonce(nonce: Buffer, seq: number): Buffer {
  const n = Buffer.from(nonce);
  n.writeUInt32BE((n.readUInt32BE(8) ^ seq) >>> 0, 8); // seq < 2^32: the top bytes XOR with 0
  return n;
}

function decryptRecord(record: Buffer, cek: Buffer, nonce: Buffer): Buffer {
  if (record.length <= 16) throw new Refusal(400, "record too short");
  const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  try {
    return Buffer.concat([
      decipher.update(record.subarray(0, record.length - 16)),
      decipher.final(),
    ]);
  } catch {
    throw new Refusal(400, "aes128gcm decryption failed");
  }
}

/** Strips trailing zero padding and the delimiter: 0x02 on the last record, 0x01 before. */
function unpad(plain: Buffer, last: boolean): Buffer {
  let i = plain.length - 1;
  while (i >= 0 && plain[i] === 0) i--;
  if (plain[i] !== (last ? 2 : 1)) throw new Refusal(400, "bad padding delimiter");
  return plain.subarray(0, i);
}

function parsePayload(plain: Buffer): unknown {
  const text = plain.toString("utf-8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Encrypts like a sender would (used by tests of the decryptor, not by web-push). */
export function encryptForTest(plain: Buffer, sub: PushSubscription, rs = 4096): Buffer {
  const sender = createECDH("prime256v1");
  const senderKey = sender.generateKeys();
  const uaPublic = Buffer.from(sub.keys.p256dh, "base64url");
  const auth = Buffer.from(sub.keys.auth, "base64url");
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), uaPublic, senderKey]);
  const ikm = hkdf(auth, sender.computeSecret(uaPublic), keyInfo, 32);
  const salt = randomBytes(16);
  const cek = hkdf(salt, ikm, Buffer.from("Content-Encoding: aes128gcm\0"), 16);
  const nonce = hkdf(salt, ikm, Buffer.from("Content-Encoding: nonce\0"), 12);
  const head = Buffer.alloc(21);
  salt.copy(head);
  head.writeUInt32BE(rs, 16);
  head[20] = 65;
  const chunk = rs - 17;
  const records: Buffer[] = [];
  for (let seq = 0, at = 0; seq === 0 || at < plain.length; seq++, at += chunk) {
    const last = at + chunk >= plain.length;
    const data = Buffer.concat([plain.subarray(at, at + chunk), Buffer.from([last ? 2 : 1])]);
    const cipher = createCipheriv("aes-128-gcm", cek, recordNonce(nonce, seq));
    records.push(cipher.update(data), cipher.final(), cipher.getAuthTag());
  }
  return Buffer.concat([head, senderKey, ...records]);
}

// ---- plumbing ---------------------------------------------------------------------------------

function answer(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    "Content-Type": "text/plain",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function waitForCount(state: State, n: number, timeoutMs: number): Promise<ReceivedPush[]> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (state.received.length < n) return;
      done();
      resolve(state.received);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`fake push: ${state.received.length}/${n} pushes after ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      state.waiters.delete(check);
    };
    state.waiters.add(check);
    check();
  });
}

let certificate: Promise<{ key: string; cert: string }> | undefined;

/** One self-signed P-256 certificate for IP 127.0.0.1 per process, made by the openssl binary. */
function selfSignedCert(): Promise<{ key: string; cert: string }> {
  certificate ??= makeCert().catch((err) => {
    certificate = undefined;
    throw new Error(`fake push: could not make a certificate with openssl: ${err}`);
  });
  return certificate;
}

async function makeCert(): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(join(tmpdir(), "fake-push-"));
  try {
    const [keyFile, certFile] = [join(dir, "key.pem"), join(dir, "cert.pem")];
    await promisify(execFile)("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
      ...["-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2"],
      ...["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    ]);
    return { key: await readFile(keyFile, "utf-8"), cert: await readFile(certFile, "utf-8") };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
