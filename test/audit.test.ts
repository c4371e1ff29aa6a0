import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

describe("audit log", () => {
  it("records every read of health and access data with who, what and the request id", async () => {
    const daughter = await signUpFamily(t);
    const mother = await createResident(t, daughter.token, { relationship: "daughter" });
    const read = await t.request("GET", `/v1/residents/${mother.id}/health`, {
      token: daughter.token,
    });
    await t.request("GET", `/v1/residents/${mother.id}/access-notes`, { token: daughter.token });
    await t.request("GET", `/v1/residents/${mother.id}/care-plan`, { token: daughter.token });

    const res = await t.request(
      "GET",
      `/v1/audit?residentId=${mother.id}&actorUserId=${daughter.id}`,
      { token: operator.token },
    );
    const actions = res.body.items.map((e: { action: string }) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        "resident.create",
        "resident.health.read",
        "resident.access_notes.read",
        "careplan.read",
      ]),
    );
    const healthRead = res.body.items.find(
      (e: { action: string }) => e.action === "resident.health.read",
    );
    expect(healthRead).toMatchObject({
      actorUserId: daughter.id,
      residentId: mother.id,
      requestId: read.headers.get("x-request-id"),
    });
  });

  it("a denied read leaves no read entry", async () => {
    const daughter = await signUpFamily(t);
    const stranger = await signUpFamily(t);
    const mother = await createResident(t, daughter.token, { relationship: "daughter" });
    expect(
      (await t.request("GET", `/v1/residents/${mother.id}/health`, { token: stranger.token }))
        .status,
    ).toBe(404);
    const res = await t.request(
      "GET",
      `/v1/audit?actorUserId=${stranger.id}&action=resident.health.read`,
      { token: operator.token },
    );
    expect(res.body.items).toEqual([]);
  });

  it("is queried by time range, newest first, a page at a time", async () => {
    const daughter = await signUpFamily(t);
    const mother = await createResident(t, daughter.token, { relationship: "daughter" });
    const start = t.clock.now().toISOString();
    for (let i = 0; i < 5; i++) {
      t.clock.advance(1000);
      await t.request("GET", `/v1/residents/${mother.id}/health`, { token: daughter.token });
    }
    const end = t.clock.now().toISOString();
    t.clock.advance(1000);
    await t.request("GET", `/v1/residents/${mother.id}/health`, { token: daughter.token });

    const q = `residentId=${mother.id}&action=resident.health.read&from=${start}&to=${end}`;
    const page1 = await t.request("GET", `/v1/audit?${q}&limit=3`, { token: operator.token });
    expect(page1.body.items).toHaveLength(3);
    expect(page1.body.nextCursor).toBeTruthy();
    const page2 = await t.request("GET", `/v1/audit?${q}&limit=3&cursor=${page1.body.nextCursor}`, {
      token: operator.token,
    });
    // `to` is exclusive: the read at exactly `end` and the one after it are outside.
    expect(page2.body.items).toHaveLength(1);
    expect(page2.body.nextCursor).toBeNull();
    const times = [...page1.body.items, ...page2.body.items].map((e: { at: string }) => e.at);
    expect(times).toEqual([...times].sort().reverse());
  });

  it("cannot be changed or deleted, even by a direct database write", async () => {
    const before = await t.db
      .selectFrom("audit_log")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    expect(Number(before.n)).toBeGreaterThan(0);
    await expect(sql`update audit_log set action = 'tampered'`.execute(t.db)).rejects.toThrow(
      /append-only/,
    );
    await expect(sql`delete from audit_log`.execute(t.db)).rejects.toThrow(/append-only/);
    const after = await t.db
      .selectFrom("audit_log")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
    const tampered = await t.db
      .selectFrom("audit_log")
      .select("id")
      .where("action", "=", "tampered")
      .execute();
    expect(tampered).toEqual([]);
  });

  it("rejects a bad time in the query, naming it", async () => {
    const res = await t.request("GET", "/v1/audit?from=yesterday", { token: operator.token });
    expect(res.status).toBe(400);
    expect(res.body.error.details.issues[0].path).toBe("query.from");
  });
});
