// npm run bench:catalog [-- --db sqlite|postgres --providers 10000 --services 100000
//                          --localities 200 --queries 3000 --warmup 300 --keep]
//
// How fast the catalog search answers, against a plain primary-key read of a service in the same
// run. Seeds a fresh database (a SQLite file in a temp dir, or its own schema on the PostgreSQL of
// --db postgres / DATABASE_URL, dropped at the end) with verified and unverified providers over
// `--localities` localities (some also serving a radius), their services with English and Chinese
// titles, and residents with a family member each. Then, one after the other, a search through
// searchCatalog() (authorisation included) and a primary-key read, rotating the search through:
//   text+category: free text and a category, the resident's locality, sorted by rating
//   category:      a category only, sorted by rating
//   text:          free text only, sorted by rating
// Progress goes to stderr; the last line of stdout is one JSON object.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Insertable, sql } from "kysely";
import pg from "pg";
import type { UsersTable } from "../accounts/accounts.table";
import type { CircleMembersTable } from "../circles/circles.table";
import { type Db, openDatabase } from "../db/database";
import { migrateToLatest } from "../db/migrator";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { localityKey } from "../providers/providers.repository";
import type {
  ProviderCategory,
  ProviderLocalitiesTable,
  ProvidersTable,
  ServicesTable,
} from "../providers/providers.table";
import type { ResidentsTable } from "../residents/residents.table";
import { findService } from "./catalog.repository";
import { searchCatalog } from "./catalog.service";

const { values: args } = parseArgs({
  options: {
    db: { type: "string" },
    providers: { type: "string", default: "10000" },
    services: { type: "string", default: "100000" },
    localities: { type: "string", default: "200" },
    residents: { type: "string", default: "100" },
    queries: { type: "string", default: "3000" },
    warmup: { type: "string", default: "300" },
    keep: { type: "boolean", default: false },
  },
});
const providerCount = Number(args.providers);
const serviceCount = Number(args.services);
const localityCount = Number(args.localities);
const residentCount = Number(args.residents);
const queryCount = Number(args.queries);
const warmupCount = Number(args.warmup);

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);

// A seeded generator, so every run searches the same data.
let state = 20261122;
function random() {
  state = (state * 1103515245 + 12345) & 0x7fffffff;
  return state / 0x80000000;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));

const titles: Record<ProviderCategory, string[]> = {
  cleaning: [
    "Home cleaning",
    "Deep cleaning",
    "Window cleaning",
    "Kitchen cleaning",
    "Laundry and ironing",
    "日常保洁",
    "深度清洁服务",
  ],
  meals: [
    "Hot lunch delivery",
    "Soft food meals",
    "Diabetic meal plan",
    "Dinner delivery",
    "送餐上门",
    "营养午餐配送",
  ],
  personal_care: [
    "Bathing assistance",
    "Dressing help",
    "Personal hygiene care",
    "助浴服务",
    "日常生活照料",
  ],
  nursing: [
    "Wound care",
    "Injection at home",
    "Blood pressure check",
    "Medication management",
    "上门护理服务",
  ],
  companionship: [
    "Companionship visit",
    "Reading and chat",
    "Walk in the park",
    "陪伴聊天",
    "陪同散步",
  ],
  escort: ["Hospital escort", "Clinic appointment escort", "Shopping escort", "陪同就医"],
  home_repair: ["Plumbing repair", "Grab bar installation", "Light fixture repair", "家电维修"],
};
const categories = Object.keys(titles) as ProviderCategory[];
const fillers = [
  "experienced",
  "gentle",
  "patient",
  "certified",
  "friendly",
  "reliable",
  "weekend",
  "evening",
  "morning",
  "bilingual",
  "trained",
  "careful",
  "punctual",
  "elderly",
  "seniors",
  "dementia",
  "mobility",
  "hygiene",
  "safety",
  "家庭",
  "老人",
  "专业",
  "耐心",
  "细致",
];
const textQueries = [
  "cleaning",
  "lunch delivery",
  "wound care",
  "escort",
  "repair",
  "bathing",
  "companionship",
  "patient",
  "dementia care",
  "保洁",
  "陪伴",
  "上门护理",
  "window",
  "meal",
];

// Localities spread over about 100 x 100 km, as a large city's districts and towns.
const localities = Array.from({ length: localityCount }, (_, i) => ({
  name: `Locality ${String(i + 1).padStart(3, "0")}`,
  latitude: 30.8 + random() * 0.9,
  longitude: 121.0 + random() * 1.0,
}));

async function freshDatabase() {
  const url = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/test";
  const wantPostgres =
    args.db === "postgres" ||
    (args.db === undefined && /^postgres(ql)?:\/\//i.test(process.env.DATABASE_URL ?? ""));
  if (args.db !== undefined && args.db !== "postgres" && args.db !== "sqlite")
    throw new Error(`--db is sqlite or postgres, not ${args.db}`);
  if (wantPostgres) {
    const schema = `kc_bench_catalog_${process.pid}_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    return {
      dialect: "postgres" as const,
      where: `schema ${schema}`,
      open: () => openDatabase({ dialect: "postgres", url }, { schema, poolSize: 4 }),
      drop: async () => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), "kincare-bench-catalog-"));
  const file = join(dir, "kincare.db");
  return {
    dialect: "sqlite" as const,
    where: file,
    open: () => openDatabase({ dialect: "sqlite", file }),
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function insertBatched<T>(rows: T[], size: number, insert: (batch: T[]) => Promise<unknown>) {
  for (let i = 0; i < rows.length; i += size) await insert(rows.slice(i, i + size));
}

interface SeededResident {
  actor: Actor;
  residentId: string;
}

async function seed(db: Db, dialect: "sqlite" | "postgres") {
  const now = new Date().toISOString();
  const started = performance.now();
  const providers: Insertable<ProvidersTable>[] = [];
  const localityRows: Insertable<ProviderLocalitiesTable>[] = [];
  for (let i = 0; i < providerCount; i++) {
    const id = newId();
    const home = pick(localities);
    const radius = random() < 0.2;
    const ratingCount = random() < 0.8 ? between(1, 200) : 0;
    const served = new Set([home.name]);
    for (let k = between(0, 2); k > 0; k--) served.add(pick(localities).name);
    for (const name of served)
      localityRows.push({ locality_key: localityKey(name), provider_id: id, locality: name });
    const offered = [...new Set([pick(categories), pick(categories), pick(categories)])];
    providers.push({
      id,
      legal_name: `Provider ${i} Co., Ltd.`,
      display_name: `Provider ${i}`,
      licence_number: `BENCH-${i}`,
      categories: JSON.stringify(offered),
      centre_latitude: radius ? home.latitude + (random() - 0.5) * 0.05 : null,
      centre_longitude: radius ? home.longitude + (random() - 0.5) * 0.05 : null,
      radius_km: radius ? between(3, 15) : null,
      contact_email: `desk${i}@provider.example`,
      contact_phone: "+862162400000",
      on_call_name: "On call",
      on_call_phone: "+8613912345678",
      // Most are verified; the rest must never show up, but still cost the filter.
      status: random() < 0.9 ? ("verified" as const) : pick(["pending", "suspended"] as const),
      status_reason: null,
      status_changed_at: null,
      status_changed_by: null,
      rating_sum: Math.floor((ratingCount * between(25, 50)) / 10),
      rating_count: ratingCount,
      no_show_count: 0,
      created_by: null,
      created_at: now,
      updated_at: now,
    });
  }
  const services: Insertable<ServicesTable>[] = [];
  for (let i = 0; i < serviceCount; i++) {
    const provider = providers[i % providers.length]!;
    const category = pick(JSON.parse(provider.categories) as ProviderCategory[]);
    const words = Array.from({ length: between(4, 10) }, () => pick(fillers)).join(" ");
    services.push({
      id: newId(),
      provider_id: provider.id,
      search_rowid: dialect === "sqlite" ? i + 1 : null,
      title: pick(titles[category]),
      category,
      description: `${pick(titles[category])}: ${words}.`,
      price_minor: between(20, 500) * 100,
      currency: "CNY",
      unit: pick(["per_visit", "per_hour", "per_meal"] as const),
      duration_minutes: pick([30, 60, 90, 120]),
      min_notice_hours: pick([2, 12, 24, 48]),
      availability: JSON.stringify([{ day: "mon", start: "08:00", end: "18:00" }]),
      active: random() < 0.95 ? 1 : 0,
      created_by: null,
      created_at: now,
      updated_at: now,
    });
  }
  const residents: SeededResident[] = [];
  const users: Insertable<UsersTable>[] = [];
  const residentRows: Insertable<ResidentsTable>[] = [];
  const members: Insertable<CircleMembersTable>[] = [];
  for (let i = 0; i < residentCount; i++) {
    const place = pick(localities);
    const userId = newId();
    const residentId = newId();
    users.push({
      id: userId,
      email: `family${i}@bench.example`,
      phone: null,
      display_name: `Family ${i}`,
      password_hash: "x",
      language: "en",
      time_zone: "Asia/Shanghai",
      quiet_hours_start: null,
      quiet_hours_end: null,
      channels: '["push"]',
      next_login_at: null,
      locked_until: null,
      disabled_at: null,
      created_at: now,
      updated_at: now,
    });
    residentRows.push({
      id: residentId,
      user_id: null,
      full_name: `Resident ${i}`,
      preferred_name: null,
      date_of_birth: "1940-01-01",
      address_line1: `${i} Main Road`,
      address_line2: null,
      locality: place.name,
      region: null,
      postal_code: null,
      country: "CN",
      latitude: place.latitude + (random() - 0.5) * 0.02,
      longitude: place.longitude + (random() - 0.5) * 0.02,
      time_zone: "Asia/Shanghai",
      language: "zh-Hans",
      phone: null,
      medical_notes: null,
      allergies: "[]",
      access_notes: null,
      status: "active" as const,
      paused_from: null,
      paused_until: null,
      status_reason: null,
      confirmed_at: now,
      confirmed_by: null,
      created_by: null,
      created_at: now,
      updated_at: now,
    });
    members.push({
      resident_id: residentId,
      user_id: userId,
      relationship: "daughter",
      level: "primary" as const,
      added_by: null,
      created_at: now,
    });
    residents.push({
      residentId,
      actor: { userId, sessionId: "bench", displayName: `Family ${i}`, roles: ["family"] },
    });
  }

  await db.transaction().execute(async (trx) => {
    await insertBatched(providers, 500, (b) => trx.insertInto("providers").values(b).execute());
    await insertBatched(localityRows, 2000, (b) =>
      trx.insertInto("provider_localities").values(b).execute(),
    );
    await insertBatched(services, 1000, (b) => trx.insertInto("services").values(b).execute());
    await insertBatched(users, 500, (b) => trx.insertInto("users").values(b).execute());
    await insertBatched(residentRows, 500, (b) => trx.insertInto("residents").values(b).execute());
    await insertBatched(members, 1000, (b) => trx.insertInto("circle_members").values(b).execute());
    // Filled once from the services table rather than row by row.
    if (dialect === "sqlite")
      await sql`INSERT INTO services_fts (services_fts) VALUES ('rebuild')`.execute(trx);
  });
  // As autovacuum would leave it: PostgreSQL's index-only scans need the visibility map.
  await sql.raw(dialect === "postgres" ? "VACUUM ANALYZE" : "ANALYZE").execute(db);
  say(
    `seeded ${providers.length} providers, ${services.length} services, ${residents.length} residents in ${Math.round(performance.now() - started)} ms`,
  );
  return { residents, serviceIds: services.map((s) => s.id) };
}

type Kind = "text+category" | "category" | "text";
const kinds: Kind[] = ["text+category", "category", "text"];

function percentiles(samples: number[]) {
  const ms = [...samples].sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.ceil(ms.length * q) - 1)] ?? 0;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(ms.at(-1) ?? 0) };
}

async function main() {
  const target = await freshDatabase();
  dropDatabase = args.keep ? undefined : target.drop;
  const { db, close } = target.open();
  try {
    say(`database: ${target.dialect} (${target.where})`);
    await migrateToLatest(db);
    const { residents, serviceIds } = await seed(db, target.dialect);

    const search: Record<Kind, number[]> = { "text+category": [], category: [], text: [] };
    const pk: number[] = [];
    let found = 0;
    let searchCpuUs = 0;
    for (let i = 0; i < warmupCount + queryCount; i++) {
      const kind = kinds[i % kinds.length]!;
      const resident = pick(residents);
      const query = {
        residentId: resident.residentId,
        sort: "rating" as const,
        limit: 20,
        ...(kind !== "category" ? { q: pick(textQueries) } : {}),
        ...(kind !== "text" ? { category: pick(categories) } : {}),
      };
      const ctx = { now: new Date(), actor: resident.actor, requestId: null };
      const cpu0 = process.cpuUsage();
      let t0 = performance.now();
      const result = await searchCatalog(db, ctx, query);
      const searchMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const id = pick(serviceIds);
      t0 = performance.now();
      const row = await findService(db, id);
      const pkMs = performance.now() - t0;
      if (!row) throw new Error(`service ${id} not found by its key`);
      if (i >= warmupCount) {
        search[kind].push(searchMs);
        pk.push(pkMs);
        found += result.items.length;
        searchCpuUs += cpu.user + cpu.system;
      }
    }
    const all = percentiles(kinds.flatMap((k) => search[k]));
    const byKind = Object.fromEntries(kinds.map((k) => [k, percentiles(search[k])]));
    const pkP = percentiles(pk);
    for (const k of kinds)
      say(
        `${k.padEnd(14)} p50 ${byKind[k]!.p50} ms, p99 ${byKind[k]!.p99} ms, max ${byKind[k]!.max} ms`,
      );
    say(
      `pk read        p50 ${pkP.p50} ms, p99 ${pkP.p99} ms; ${Math.round(found / queryCount)} results a search on average`,
    );
    console.log(
      JSON.stringify({
        bench: "catalog",
        search_p50_ms: all.p50,
        search_p99_ms: all.p99,
        pk_p50_ms: pkP.p50,
        pk_p99_ms: pkP.p99,
        db: target.dialect,
        providers: providerCount,
        services: serviceCount,
        queries: queryCount,
        // This process's CPU per search (SQLite's work included; PostgreSQL's is in the server):
        // far below the wall-clock p99 when other processes hold the cores.
        search_cpu_ms_mean: Math.round(searchCpuUs / queryCount) / 1000,
        load_1m: Math.round(loadavg()[0]! * 100) / 100,
        by_kind_p99_ms: Object.fromEntries(kinds.map((k) => [k, byKind[k]!.p99])),
      }),
    );
  } finally {
    await close();
  }
}

/** Set while the run's database exists, so that a failed run does not leave it behind. */
let dropDatabase: (() => Promise<void>) | undefined;

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    await dropDatabase?.();
  });
