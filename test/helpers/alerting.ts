// A kincare with its real ways out: the twilio SDK against a fake Twilio API and web-push against
// a local HTTPS push service, both on 127.0.0.1; and people who can be reached through them.
import { expect } from "vitest";
import { connectDevice, type Registered, registerDevice } from "./devices.factory";
import { type SignedIn, signUpFamily, unique } from "./factories";
import { type FakePush, type PushSubscription, startFakePush } from "./fake-push";
import { type FakeTwilio, startFakeTwilio } from "./fake-twilio";
import { eventually as pollUntil } from "./processes";
import { createResident, joinCircle } from "./residents.factory";
import { createTestApp, type TestApp, type TestAppOptions } from "./test-app";

export const KINCARE_NUMBER = "+15005550006";

export interface Alerting {
  t: TestApp;
  twilio: FakeTwilio;
  push: FakePush;
  close(): Promise<void>;
}

export async function startAlerting(options: TestAppOptions = {}): Promise<Alerting> {
  const twilio = await startFakeTwilio();
  const push = await startFakePush();
  const t = await createTestApp({
    mqtt: true,
    jobs: true,
    serve: true,
    pushAgent: push.agent,
    ...options,
    env: {
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_FROM: KINCARE_NUMBER,
      TWILIO_API_URL: twilio.url,
      ...options.env,
    },
  });
  return {
    t,
    twilio,
    push,
    async close() {
      await t.close();
      await twilio.close();
      await push.close();
    },
  };
}

let phoneCounter = 0;
/** A valid, distinct mainland China mobile number per call (per process too). */
export function mobile(): string {
  phoneCounter += 1;
  const n = (process.pid % 10_000) * 10_000 + phoneCounter;
  return `+86139${String(n).padStart(8, "0").slice(-8)}`;
}

export interface Reachable extends SignedIn {
  phone: string;
  subscription: PushSubscription | null;
}

/** A family member with a confirmed phone (by the code texted to it) and, unless told, push on. */
export async function reachablePerson(
  a: Alerting,
  opts: { displayName?: string; language?: string; push?: boolean; confirm?: boolean } = {},
): Promise<Reachable> {
  const phone = mobile();
  const person = await signUpFamily(a.t, {
    displayName: opts.displayName ?? unique("Relative "),
    phone,
  });
  if (opts.language) {
    const res = await a.t.request("PATCH", "/v1/me", {
      token: person.token,
      body: { language: opts.language },
    });
    expect(res.status).toBe(200);
  }
  if (opts.confirm ?? true) {
    const sent = await a.t.request("POST", "/v1/me/phone/confirmation", { token: person.token });
    expect(sent.status).toBe(202);
    const text = await eventually(async () =>
      a.twilio.messages.find((m) => m.to === phone && /\b\d{6}\b/.test(m.body)),
    );
    const code = /\b(\d{6})\b/.exec(text.body)![1]!;
    const ok = await a.t.request("POST", "/v1/me/phone/confirm", {
      token: person.token,
      body: { code },
    });
    expect(ok.body).toMatchObject({ confirmed: true });
  }
  let subscription: PushSubscription | null = null;
  if (opts.push ?? true) {
    subscription = await a.push.subscribe();
    const res = await a.t.request("POST", "/v1/push/subscriptions", {
      token: person.token,
      body: subscription,
    });
    expect(res.status).toBe(201);
  }
  return { ...person, phone, subscription };
}

export interface Household {
  daughter: Reachable;
  son: Reachable;
  residentId: string;
  device: Registered;
}

/** Grandma Wang with an SOS pendant, her daughter (primary, first contact) and her son. */
export async function household(
  a: Alerting,
  opts: { daughterLanguage?: string; kind?: string } = {},
): Promise<Household> {
  const daughter = await reachablePerson(a, {
    displayName: "Li Na",
    ...(opts.daughterLanguage ? { language: opts.daughterLanguage } : {}),
  });
  const son = await reachablePerson(a, { displayName: "Li Lei" });
  const residentId = (await createResident(a.t, daughter.token, { relationship: "daughter" })).id;
  await joinCircle(a.t, daughter.token, residentId, son);
  const device = await registerDevice(a.t, daughter.token, residentId, {
    kind: opts.kind ?? "sos_pendant",
  });
  return { daughter, son, residentId, device };
}

/** A one-tier-at-a-time chain: daughter, then son, then the desk; short waits. */
export async function simpleChain(
  a: Alerting,
  h: Household,
  overrides: Record<string, unknown> = {},
) {
  const res = await a.t.request("PUT", `/v1/residents/${h.residentId}/escalation-policy`, {
    token: h.daughter.token,
    body: {
      tiers: [
        {
          recipients: [{ kind: "member", userId: h.daughter.id }],
          channels: ["push", "sms"],
          waitMinutes: 2,
        },
        {
          recipients: [{ kind: "member", userId: h.son.id }],
          channels: ["push", "sms"],
          waitMinutes: 3,
        },
        { recipients: [{ kind: "desk" }], channels: ["push", "sms"], waitMinutes: 5 },
      ],
      repeatEveryMinutes: 5,
      repeatLimit: 2,
      ...overrides,
    },
  });
  expect(res.status).toBe(200);
}

export { connectDevice };

/** Polls until `check` returns a truthy value, or a non-empty array (jobs run on their own loop). */
export function eventually<T>(
  check: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
): Promise<T> {
  return pollUntil(
    async () => {
      const value = await check();
      return Array.isArray(value) && value.length === 0 ? undefined : value;
    },
    { timeoutMs, everyMs: 20 },
  );
}

/**
 * Waits until no job is running and no delivery is mid-send. Call it before moving the fake clock:
 * a jump past a running job's lease would (rightly) make its delivery look in doubt and resend it.
 */
export async function idle(t: TestApp): Promise<void> {
  await eventually(async () => {
    const running = await t.db
      .selectFrom("jobs")
      .select("id")
      .where("status", "=", "running")
      .executeTakeFirst();
    const sending = await t.db
      .selectFrom("deliveries")
      .select("id")
      .where("status", "in", ["sending", "pending"])
      .executeTakeFirst();
    return !running && !sending;
  });
}

/** Moves the fake clock once kincare is idle, and lets the scheduler look at once. */
export async function advance(t: TestApp, ms: number): Promise<void> {
  await idle(t);
  t.clock.advance(ms);
  t.scheduler.nudge();
}
