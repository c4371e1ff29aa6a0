// Escalation across real process deaths and real neighbours: a kincare killed mid-chain loses no
// step when it comes back, and two kincare processes on one PostgreSQL send each notification
// once. Real child processes (as `npm start` runs them), the embedded broker over TCP, the real
// twilio SDK against the fake Twilio API.
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Alerting, reachablePerson } from "./helpers/alerting";
import { FakeClock } from "./helpers/clock";
import { registerDevice } from "./helpers/devices.factory";
import { signUpFamily } from "./helpers/factories";
import { type FakeTwilio, startFakeTwilio } from "./helpers/fake-twilio";
import { eventually, freePort, type Spawned, spawnTs } from "./helpers/processes";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";
import { createTestDatabase, migrated, type TestDatabase, usingPostgres } from "./helpers/test-db";

const FROM = "+15005550006";
let twilio: FakeTwilio;
const databases: TestDatabase[] = [];

beforeAll(async () => {
  twilio = await startFakeTwilio();
});
afterAll(async () => {
  await twilio.close();
  for (const db of databases) await db.drop();
});

const twilioEnv = () => ({
  TWILIO_ACCOUNT_SID: twilio.accountSid,
  TWILIO_AUTH_TOKEN: twilio.authToken,
  TWILIO_FROM: FROM,
  TWILIO_API_URL: twilio.url,
});

interface Home {
  daughterPhone: string;
  sonPhone: string;
  device: { id: string; secret: string; topicRoot: string };
}

/** Families set up through the API of an in-process kincare on the database, then it stops. */
async function prepare(testDb: TestDatabase, homes: number) {
  // On the wall clock, like the kincare processes that take over: a device registered at the
  // fake clock's date would look silent for days to them and raise "no sign of activity".
  const t: TestApp = await createTestApp({
    testDb,
    jobs: true,
    env: twilioEnv(),
    clock: new FakeClock(new Date()),
  });
  const a: Alerting = {
    t,
    twilio,
    push: undefined as never,
    close: () => t.close(),
  };
  const made: Home[] = [];
  try {
    for (let i = 0; i < homes; i++) {
      const daughter = await reachablePerson(a, { push: false, displayName: `Daughter ${i}` });
      const son = await reachablePerson(a, { push: false, displayName: `Son ${i}` });
      const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
      await joinCircle(t, daughter.token, residentId, son);
      const policy = await t.request("PUT", `/v1/residents/${residentId}/escalation-policy`, {
        token: daughter.token,
        body: {
          tiers: [
            {
              recipients: [{ kind: "member", userId: daughter.id }],
              channels: ["sms"],
              waitMinutes: 0.25,
            },
            {
              recipients: [{ kind: "member", userId: son.id }],
              channels: ["sms"],
              waitMinutes: 0.25,
            },
          ],
          repeatEveryMinutes: 5,
          repeatLimit: 0,
        },
      });
      expect(policy.status).toBe(200);
      const device = await registerDevice(t, daughter.token, residentId, { kind: "sos_button" });
      made.push({ daughterPhone: daughter.phone, sonPhone: son.phone, device });
    }
    // Someone who is not in any chain, so the fake's texts are only the alerts from here on.
    await signUpFamily(t);
  } finally {
    await t.close();
  }
  return { homes: made, topicPrefix: t.config.MQTT_TOPIC_PREFIX };
}

async function startKincare(testDb: TestDatabase, topicPrefix: string) {
  const port = await freePort();
  const mqttPort = await freePort();
  const proc: Spawned = spawnTs("src/main.ts", {
    ...testDb.env,
    ...twilioEnv(),
    PORT: String(port),
    HOST: "127.0.0.1",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(mqttPort),
    MQTT_URL: "",
    MQTT_TOPIC_PREFIX: topicPrefix,
    JOBS_POLL_MS: "100",
    LOG_LEVEL: "warn",
    PUBLIC_URL: `http://127.0.0.1:${port}`,
  });
  await eventually(
    () =>
      fetch(`http://127.0.0.1:${port}/readyz`)
        .then((r) => r.ok)
        .catch(() => false),
    // Generous: a cold tsx start on a busy 2-core machine can take a while.
    { what: "kincare ready", timeoutMs: 60_000 },
  );
  return { proc, port, mqttPort };
}

async function pressSos(mqttPort: number, home: Home, msgId: string) {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
    username: home.device.id,
    password: home.device.secret,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  await client.publishAsync(
    `${home.device.topicRoot}event`,
    JSON.stringify({ msgId, ts: new Date().toISOString(), type: "sos" }),
    { qos: 1 },
  );
  await client.endAsync();
}

const alertTexts = (phone: string) =>
  twilio.messages.filter((m) => m.to === phone && m.sid && /Reply/.test(m.body));

describe("escalation survives", () => {
  it("a kill of the process mid-chain: the next tier is still called, once", async () => {
    const testDb = await createTestDatabase();
    databases.push(testDb);
    const { homes, topicPrefix } = await prepare(testDb, 1);
    const home = homes[0]!;
    const first = await startKincare(testDb, topicPrefix);
    await pressSos(first.mqttPort, home, "crash-1");
    await eventually(async () => alertTexts(home.daughterPhone).length > 0, {
      what: "tier 1 text",
    });
    first.proc.child.kill("SIGKILL");
    await first.proc.exited;
    expect(alertTexts(home.sonPhone)).toHaveLength(0);

    // Dead through the tier's wait; the step is in the database, not in the dead process.
    await new Promise((r) => setTimeout(r, 2_000));
    const second = await startKincare(testDb, topicPrefix);
    try {
      await eventually(async () => alertTexts(home.sonPhone).length > 0, {
        what: "tier 2 text after the restart",
        timeoutMs: 30_000,
      });
      await new Promise((r) => setTimeout(r, 1_000));
      expect(alertTexts(home.sonPhone)).toHaveLength(1);
      // The daughter's text had reached Twilio before the kill. If kincare died before writing
      // that down, it is sent again (at-least-once for an SOS) and marked in doubt on the timeline.
      const daughterTexts = alertTexts(home.daughterPhone).length;
      const opened = await migrated(testDb);
      try {
        const inDoubt = await opened.db
          .selectFrom("alert_timeline")
          .select("id")
          .where("type", "=", "notification_in_doubt")
          .execute();
        expect(daughterTexts).toBe(1 + inDoubt.length);
        expect(inDoubt.length).toBeLessThanOrEqual(1);
      } finally {
        await opened.close();
      }
    } finally {
      second.proc.child.kill("SIGTERM");
      await second.proc.exited;
    }
  }, 120_000);

  it.skipIf(!usingPostgres)(
    "two processes on one PostgreSQL: each notification of each step goes out once",
    async () => {
      const testDb = await createTestDatabase();
      databases.push(testDb);
      const { homes, topicPrefix } = await prepare(testDb, 8);
      const one = await startKincare(testDb, topicPrefix);
      const two = await startKincare(testDb, topicPrefix);
      try {
        await Promise.all(
          homes.map((home, i) =>
            pressSos(i % 2 === 0 ? one.mqttPort : two.mqttPort, home, `pair-${i}`),
          ),
        );
        await eventually(async () => homes.every((h) => alertTexts(h.sonPhone).length > 0), {
          what: "both tiers of every alert",
          timeoutMs: 40_000,
        });
        await new Promise((r) => setTimeout(r, 1_500));
        for (const home of homes) {
          expect(alertTexts(home.daughterPhone)).toHaveLength(1);
          expect(alertTexts(home.sonPhone)).toHaveLength(1);
        }
      } finally {
        one.proc.child.kill("SIGTERM");
        two.proc.child.kill("SIGTERM");
        await Promise.all([one.proc.exited, two.proc.exited]);
      }
    },
    180_000,
  );
});
