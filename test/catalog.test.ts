import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { createProvider, createService, serviceInput } from "./helpers/providers.factory";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;
let daughter: SignedIn;
let residentId: string;
const admins: Record<string, SignedIn> = {};
const providers: Record<string, string> = {};
const services: Record<string, string> = {};

// The resident lives in Changning, Shanghai (31.2108, 121.4237).
beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
  daughter = await signUpFamily(t, { displayName: "Li Mei" });
  residentId = (await createResident(t, daughter.token, { relationship: "daughter" })).id;

  const setUp = async (
    key: string,
    overrides: Record<string, unknown>,
    status: "verified" | "pending" | "suspended",
  ) => {
    admins[key] = await signUpFamily(t);
    const p = await createProvider(
      t,
      admins[key].token,
      overrides,
      status === "pending" ? undefined : operator.token,
    );
    providers[key] = p.id;
  };
  // By locality (any case), rated 4.5 from 10 reviews.
  await setUp(
    "local",
    { displayName: "Changning Home Care", serviceArea: { localities: ["changning "] } },
    "verified",
  );
  // By radius: centre about 2.3 km away, 5 km radius; rated 4.0 from 2.
  await setUp(
    "radius",
    {
      displayName: "Jing'an Helpers",
      serviceArea: {
        localities: ["Jing'an"],
        centre: { latitude: 31.23, longitude: 121.43 },
        radiusKm: 5,
      },
    },
    "verified",
  );
  // Far away: a radius that does not reach the resident, and another locality.
  await setUp(
    "far",
    {
      displayName: "Pudong Cleaners",
      serviceArea: {
        localities: ["Pudong"],
        centre: { latitude: 31.22, longitude: 121.54 },
        radiusKm: 5,
      },
    },
    "verified",
  );
  await setUp("pending", { displayName: "Not Yet Verified" }, "pending");
  await setUp("suspended", { displayName: "Suspended Co" }, "verified");

  const add = async (key: string, provider: string, overrides: Record<string, unknown>) => {
    services[key] = (
      await createService(t, admins[provider]!.token, providers[provider]!, overrides)
    ).id;
  };
  await add("localClean", "local", { title: "Deep home cleaning", priceMinor: 20000 });
  await add("localMeal", "local", {
    title: "Hot lunch delivery",
    category: "meals",
    description: "Soft food, low salt, delivered at noon",
    priceMinor: 3000,
    unit: "per_meal",
  });
  await add("localInactive", "local", { title: "Window cleaning", active: false });
  await add("radiusClean", "radius", { title: "Weekly cleaning", priceMinor: 15000 });
  await add("radiusChinese", "radius", {
    title: "陪伴聊天",
    category: "companionship",
    description: "老人陪护，读报散步",
    priceMinor: 8000,
    unit: "per_hour",
  });
  await add("farClean", "far", { title: "Cleaning in Pudong", priceMinor: 9000 });
  await add("pendingClean", "pending", { title: "Cheap cleaning", priceMinor: 100 });
  await add("suspendedClean", "suspended", { title: "Suspended cleaning", priceMinor: 200 });
  await t.request("POST", `/v1/providers/${providers.suspended}/status`, {
    token: operator.token,
    body: { status: "suspended", reason: "licence lapsed" },
  });
  // The ratings slice keeps these sums; here they are set directly.
  await t.db
    .updateTable("providers")
    .set({ rating_sum: 45, rating_count: 10 })
    .where("id", "=", providers.local!)
    .execute();
  await t.db
    .updateTable("providers")
    .set({ rating_sum: 8, rating_count: 2 })
    .where("id", "=", providers.radius!)
    .execute();
});
afterAll(() => t.close());

async function search(params: Record<string, string | number>, token = daughter.token) {
  const qs = new URLSearchParams(
    Object.entries({ residentId, ...params }).map(([k, v]): [string, string] => [k, String(v)]),
  );
  return t.request("GET", `/v1/catalog/search?${qs}`, { token });
}
const ids = (res: { body: { items: { service: { id: string } }[] } }) =>
  res.body.items.map((i) => i.service.id);

describe("catalog management", () => {
  it("the admin publishes, changes and deactivates services; others see only active ones", async () => {
    const admin = admins.local!;
    const created = await createService(t, admin.token, providers.local!, {
      title: "Bath assistance",
      category: "personal_care",
    });
    const got = await t.request("GET", `/v1/services/${created.id}`, { token: daughter.token });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      title: "Bath assistance",
      price: { amountMinor: 12000, currency: "CNY" },
      unit: "per_visit",
      availability: [{ day: "mon", start: "08:00", end: "18:00" }],
      active: true,
    });
    const off = await t.request("PATCH", `/v1/services/${created.id}`, {
      token: admin.token,
      body: { active: false, priceMinor: 13000 },
    });
    expect(off.body).toMatchObject({ active: false, price: { amountMinor: 13000 } });
    expect(
      (await t.request("GET", `/v1/services/${created.id}`, { token: daughter.token })).status,
    ).toBe(404);
    expect(
      (await t.request("GET", `/v1/services/${created.id}`, { token: admin.token })).status,
    ).toBe(200);

    const asAdmin = await t.request("GET", `/v1/providers/${providers.local}/services`, {
      token: admin.token,
    });
    const asFamily = await t.request("GET", `/v1/providers/${providers.local}/services`, {
      token: daughter.token,
    });
    expect(asAdmin.body.items.map((s: { id: string }) => s.id)).toContain(services.localInactive);
    expect(asFamily.body.items.map((s: { id: string }) => s.id)).not.toContain(
      services.localInactive,
    );
    expect(asFamily.body.items.every((s: { active: boolean }) => s.active)).toBe(true);
  });

  it("a provider's admin never touches another provider's services (404); operators and families may not either", async () => {
    const other = admins.radius!;
    const patch = { priceMinor: 1 };
    expect(
      (
        await t.request("PATCH", `/v1/services/${services.localClean}`, {
          token: other.token,
          body: patch,
        })
      ).status,
    ).toBe(404);
    const post = await t.request("POST", `/v1/providers/${providers.local}/services`, {
      token: other.token,
      body: serviceInput(),
    });
    expect(post.status).toBe(404);
    expect(post.body.error.code).toBe("not_found");
    const byOperator = await t.request("PATCH", `/v1/services/${services.localClean}`, {
      token: operator.token,
      body: patch,
    });
    expect(byOperator.status).toBe(403);
    expect(
      (
        await t.request("PATCH", `/v1/services/${services.localClean}`, {
          token: daughter.token,
          body: patch,
        })
      ).status,
    ).toBe(404);
    // Nor a pending provider's services, for anyone but its admins and operators.
    expect(
      (await t.request("GET", `/v1/services/${services.pendingClean}`, { token: daughter.token }))
        .status,
    ).toBe(404);
    const unchanged = await t.request("GET", `/v1/services/${services.localClean}`, {
      token: daughter.token,
    });
    expect(unchanged.body.price.amountMinor).toBe(20000);
  });

  it.each([
    ["a category the provider is not registered for", { category: "nursing" }, "category"],
    ["a fractional price", { priceMinor: 99.5 }, "priceMinor"],
    ["a lower-case currency", { currency: "cny" }, "currency"],
    ["an unknown unit", { unit: "per_day" }, "unit"],
    [
      "a window that ends before it starts",
      { availability: [{ day: "tue", start: "18:00", end: "08:00" }] },
      "availability.0.end",
    ],
  ])("publishing with %s is refused, naming the field", async (_name, override, path) => {
    const res = await t.request("POST", `/v1/providers/${providers.local}/services`, {
      token: admins.local!.token,
      body: serviceInput(override),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details.issues.map((i: { path: string }) => i.path)).toContain(path);
  });
});

describe("catalog search", () => {
  it("finds by text only among verified providers serving the resident, with provider name and rating", async () => {
    const res = await search({ q: "clean" });
    expect(res.status).toBe(200);
    expect(ids(res).sort()).toEqual([services.localClean, services.radiusClean].sort());
    const local = res.body.items.find(
      (i: { service: { id: string } }) => i.service.id === services.localClean,
    );
    expect(local.provider).toEqual({
      id: providers.local,
      displayName: "Changning Home Care",
      rating: { average: 4.5, count: 10 },
    });
    expect(local.distanceKm).toBeNull();
    const radius = res.body.items.find(
      (i: { service: { id: string } }) => i.service.id === services.radiusClean,
    );
    expect(radius.distanceKm).toBeGreaterThan(2);
    expect(radius.distanceKm).toBeLessThan(3);
  });

  it("without text, still only the resident's providers and active services", async () => {
    const all = ids(await search({ limit: 50 }));
    expect(all.sort()).toEqual(
      [
        services.localClean,
        services.localMeal,
        services.radiusClean,
        services.radiusChinese,
      ].sort(),
    );
  });

  it("sorts by rating, price and distance", async () => {
    expect(ids(await search({ category: "cleaning", sort: "rating" }))).toEqual([
      services.localClean,
      services.radiusClean,
    ]);
    expect(ids(await search({ sort: "price" }))).toEqual([
      services.localMeal,
      services.radiusChinese,
      services.radiusClean,
      services.localClean,
    ]);
    // The provider with a base comes first; one serving by locality alone has no distance.
    const byDistance = await search({ category: "cleaning", sort: "distance" });
    expect(ids(byDistance)).toEqual([services.radiusClean, services.localClean]);
  });

  it("filters by category, price and rating", async () => {
    expect(ids(await search({ category: "meals" }))).toEqual([services.localMeal]);
    expect(ids(await search({ minPrice: 8000, maxPrice: 15000, sort: "price" }))).toEqual([
      services.radiusChinese,
      services.radiusClean,
    ]);
    expect(ids(await search({ minRating: 4.2, sort: "price" }))).toEqual([
      services.localMeal,
      services.localClean,
    ]);
    expect(ids(await search({ q: "clean", category: "meals" }))).toEqual([]);
  });

  it("matches several words, words in the description, and Chinese text (short words too)", async () => {
    expect(ids(await search({ q: "lunch salt" }))).toEqual([services.localMeal]);
    expect(ids(await search({ q: "陪伴" }))).toEqual([services.radiusChinese]);
    expect(ids(await search({ q: "老人陪护" }))).toEqual([services.radiusChinese]);
    expect(ids(await search({ q: "散步 陪伴聊天" }))).toEqual([services.radiusChinese]);
    // Punctuation and query syntax are only separators.
    expect(ids(await search({ q: 'clean* OR "NEAR(' }))).toEqual(
      ids(await search({ q: "clean near" })),
    );
  });

  it("keeps the text index in step when a title changes", async () => {
    const admin = admins.local!;
    const s = await createService(t, admin.token, providers.local!, {
      title: "Garden tidying",
      category: "cleaning",
    });
    expect(ids(await search({ q: "garden" }))).toEqual([s.id]);
    await t.request("PATCH", `/v1/services/${s.id}`, {
      token: admin.token,
      body: { title: "Balcony tidying" },
    });
    expect(ids(await search({ q: "garden" }))).toEqual([]);
    expect(ids(await search({ q: "balcony" }))).toEqual([s.id]);
    await t.request("PATCH", `/v1/services/${s.id}`, {
      token: admin.token,
      body: { active: false },
    });
    expect(ids(await search({ q: "balcony" }))).toEqual([]);
  });

  it("pages with a cursor until every result was seen once", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Awaited<ReturnType<typeof search>> = await search({
        sort: "price",
        limit: 1,
        ...(cursor ? { cursor } : {}),
      });
      expect(res.status).toBe(200);
      seen.push(...ids(res));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(ids(await search({ sort: "price", limit: 50 })));
    expect(seen).toHaveLength(4);
  });

  it("follows the resident when they move: the locality filter is always applied", async () => {
    const son = await signUpFamily(t);
    const other = (
      await createResident(t, son.token, {
        relationship: "son",
        address: {
          line1: "1 Century Avenue",
          locality: "Pudong",
          country: "CN",
          latitude: 31.2397,
          longitude: 121.4998,
        },
      })
    ).id;
    const res = await t.request("GET", `/v1/catalog/search?residentId=${other}&q=clean`, {
      token: son.token,
    });
    expect(ids(res)).toEqual([services.farClean]);
  });

  it.each([
    ["maxPrice below minPrice", { minPrice: 500, maxPrice: 100 }, "query.maxPrice"],
    ["an unknown sort", { sort: "popularity" }, "query.sort"],
    ["a limit of zero", { limit: 0 }, "query.limit"],
    ["a rating above five", { minRating: 6 }, "query.minRating"],
    ["an unknown category", { category: "gardening" }, "query.category"],
    ["a made-up cursor", { cursor: "bm90LWEtY3Vyc29y" }, "query.cursor"],
  ])("%s is a 400 naming the parameter", async (_name, params, path) => {
    const res = await search(params);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details.issues.map((i: { path: string }) => i.path)).toContain(path);
  });

  it("needs a resident", async () => {
    const res = await t.request("GET", "/v1/catalog/search?q=clean", { token: daughter.token });
    expect(res.status).toBe(400);
    expect(res.body.error.details.issues[0].path).toBe("query.residentId");
  });

  it("a family member searches only for residents they can see", async () => {
    const stranger = await signUpFamily(t);
    const refused = await search({ q: "clean" }, stranger.token);
    expect(refused.status).toBe(404);
    expect(refused.body.error.code).toBe("not_found");
    await joinCircle(t, daughter.token, residentId, stranger);
    expect((await search({ q: "clean" }, stranger.token)).status).toBe(200);
    // Provider admins are not related to residents either.
    expect((await search({ q: "clean" }, admins.local!.token)).status).toBe(404);
    expect((await search({ q: "clean" }, operator.token)).status).toBe(200);
    expect((await t.request("GET", `/v1/catalog/search?residentId=${residentId}`)).status).toBe(
      401,
    );
  });
});

describe("catalog search, matching words by the full-text index or by scanning", () => {
  it.each([
    ["clean"],
    ["lunch salt"],
    ["陪伴"],
    ["老人陪护"],
    ["cleaning weekly"],
    ["nothing like this"],
  ])("both ways find the same services for %j", async (q) => {
    const { searchServices, queryWords } = await import("../src/catalog/catalog.repository");
    const filter = {
      localityKey: "changning",
      latitude: 31.2108,
      longitude: 121.4237,
      words: queryWords(q),
      sort: "price" as const,
      limit: 50,
      offset: 0,
    };
    const scan = await searchServices(t.db, { ...filter, textWay: "scan" });
    const index = await searchServices(t.db, { ...filter, textWay: "index" });
    expect(index.map((r) => r.id)).toEqual(scan.map((r) => r.id));
    expect(ids(await search({ q, sort: "price", limit: 50 }))).toEqual(scan.map((r) => r.id));
  });
});
