// An SOS in the middle of a telemetry flood is stored and alerted while the flood goes on:
// events go before telemetry in every commit.
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectDevice,
  event,
  publish,
  registerDevice,
  telemetry,
  usingExternalBroker,
} from "./helpers/devices.factory";
import { type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ mqtt: true });
});
afterAll(() => t.close());

// On an external broker the broker itself queues (and, past its max_queued_messages, drops) what
// kincare has not taken yet; this test is about kincare's own ordering, on the embedded broker.
describe.skipIf(usingExternalBroker)("a telemetry flood", () => {
  it("does not hold back an SOS", async () => {
    const daughter: SignedIn = await signUpFamily(t);
    const residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;
    const flooders: { client: MqttClient; topic: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const d = await registerDevice(t, daughter.token, residentId, { kind: "hub" });
      flooders.push({ client: await connectDevice(t, d), topic: `${d.topicRoot}telemetry` });
    }
    const button = await registerDevice(t, daughter.token, residentId, { kind: "sos_button" });
    const client = await connectDevice(t, button);
    const perDevice = 1000;
    const total = flooders.length * perDevice;
    const flood = flooders.flatMap(({ client, topic }, n) =>
      Array.from({ length: perDevice }, (_, i) =>
        client.publishAsync(
          topic,
          telemetry(t, `f${n}-${i}`, [{ type: "heart_rate", unit: "/min", value: 60 + (i % 30) }]),
          { qos: 1 },
        ),
      ),
    );

    await new Promise((r) => setTimeout(r, 50)); // the flood is under way
    await publish(t, client, `${button.topicRoot}event`, event(t, "help", "sos"));
    const stored = Number(
      (
        await t.db
          .selectFrom("readings")
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .where("resident_id", "=", residentId)
          .executeTakeFirstOrThrow()
      ).n,
    );
    const alerts = await t.db
      .selectFrom("alerts")
      .select(["kind", "status"])
      .where("resident_id", "=", residentId)
      .where("kind", "=", "sos")
      .execute();
    expect(alerts).toEqual([{ kind: "sos", status: "open" }]);
    // The SOS was in while most of the flood was still waiting.
    expect(stored).toBeLessThan(total);

    await Promise.all(flood);
    await Promise.all([client, ...flooders.map((f) => f.client)].map((c) => c.endAsync()));
    await t.system.ingest.drain();
    const after = await t.db
      .selectFrom("readings")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("resident_id", "=", residentId)
      .executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(total);
  }, 60_000);
});
