// npm run demo [-- --simulate N [simulator options]]: seeds a small demo community into the
// configured database (safe to run twice); with --simulate, then runs N simulated devices of its
// residents (devices/simulator.ts) against kincare's broker, so there is live data to look at.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

import { findUserByLogin, rolesOf } from "../accounts/accounts.repository";
import { createUser, ensureOperator } from "../accounts/accounts.service";
import { currentPlan, updatePlan } from "../careplans/careplans.service";
import { acceptInvitation, invite } from "../circles/circles.service";
import { ConfigError, loadConfig } from "../config";
import { type Db, openDatabase } from "../db/database";
import { migrateToLatest } from "../db/migrator";
import type { Actor } from "../http/context";
import { createResident } from "../residents/residents.service";

const PASSWORD = "kincare-demo-2026";

interface Family {
  resident: {
    fullName: string;
    preferredName: string;
    dateOfBirth: string;
    address: {
      line1: string;
      locality: string;
      region: string;
      postalCode: string;
      country: string;
      latitude: number;
      longitude: number;
    };
    timeZone: string;
    language: "en" | "zh-Hans";
    phone: string;
  };
  primary: {
    name: string;
    email: string;
    relationship: string;
    timeZone: string;
    language: "en" | "zh-Hans";
  };
  member: {
    name: string;
    email: string;
    relationship: string;
    timeZone: string;
    language: "en" | "zh-Hans";
  };
  medication: { id: string; name: string; dose: string; times: string[] };
}

const families: Family[] = [
  {
    resident: {
      fullName: "Wang Shulan",
      preferredName: "Grandma Wang",
      dateOfBirth: "1944-03-18",
      address: {
        line1: "12 Lane 58, Xinhua Road",
        locality: "Changning",
        region: "Shanghai",
        postalCode: "200052",
        country: "CN",
        latitude: 31.2108,
        longitude: 121.4237,
      },
      timeZone: "Asia/Shanghai",
      language: "zh-Hans",
      phone: "+8613800138000",
    },
    primary: {
      name: "Li Mei",
      email: "li.mei@demo.kincare.local",
      relationship: "daughter",
      timeZone: "Europe/London",
      language: "zh-Hans",
    },
    member: {
      name: "Li Lei",
      email: "li.lei@demo.kincare.local",
      relationship: "son",
      timeZone: "Asia/Shanghai",
      language: "zh-Hans",
    },
    medication: {
      id: "metformin",
      name: "Metformin",
      dose: "500 mg tablet",
      times: ["08:00", "20:00"],
    },
  },
  {
    resident: {
      fullName: "Margaret Hughes",
      preferredName: "Peggy",
      dateOfBirth: "1940-11-02",
      address: {
        line1: "4 Orchard Close",
        locality: "Headington",
        region: "Oxfordshire",
        postalCode: "OX3 9DU",
        country: "GB",
        latitude: 51.7606,
        longitude: -1.2133,
      },
      timeZone: "Europe/London",
      language: "en",
      phone: "+441865000111",
    },
    primary: {
      name: "Sarah Hughes",
      email: "sarah.hughes@demo.kincare.local",
      relationship: "daughter",
      timeZone: "America/Toronto",
      language: "en",
    },
    member: {
      name: "Tom Hughes",
      email: "tom.hughes@demo.kincare.local",
      relationship: "son",
      timeZone: "Australia/Sydney",
      language: "en",
    },
    medication: { id: "ramipril", name: "Ramipril", dose: "5 mg capsule", times: ["09:00"] },
  },
  {
    resident: {
      fullName: "Rosa Martinez",
      preferredName: "Abuela Rosa",
      dateOfBirth: "1938-06-21",
      address: {
        line1: "221 Clinton Street",
        locality: "Lower East Side",
        region: "New York",
        postalCode: "10002",
        country: "US",
        latitude: 40.7136,
        longitude: -73.9872,
      },
      timeZone: "America/New_York",
      language: "en",
      phone: "+12125550123",
    },
    primary: {
      name: "Daniel Martinez",
      email: "daniel.martinez@demo.kincare.local",
      relationship: "grandson",
      timeZone: "America/Los_Angeles",
      language: "en",
    },
    member: {
      name: "Lucia Martinez",
      email: "lucia.martinez@demo.kincare.local",
      relationship: "daughter",
      timeZone: "Europe/Madrid",
      language: "en",
    },
    medication: {
      id: "levothyroxine",
      name: "Levothyroxine",
      dose: "50 mcg tablet",
      times: ["07:00"],
    },
  },
];

async function actorFor(db: Db, email: string): Promise<Actor> {
  const user = await findUserByLogin(db, { email });
  if (!user) throw new Error(`demo user ${email} is missing`);
  return {
    userId: user.id,
    sessionId: "demo",
    displayName: user.display_name,
    roles: await rolesOf(db, user.id),
  };
}

async function seedFamily(
  db: Db,
  publicUrl: string,
  family: Family,
): Promise<"created" | "present"> {
  const now = () => new Date();
  if (await findUserByLogin(db, { email: family.primary.email })) return "present";
  const system = { now: now(), actor: null, requestId: null };
  for (const person of [family.primary, family.member]) {
    await db.transaction().execute((trx) =>
      createUser(
        trx,
        system,
        {
          displayName: person.name,
          email: person.email,
          password: PASSWORD,
          language: person.language,
          timeZone: person.timeZone,
        },
        ["family"],
      ),
    );
  }
  const primary = await actorFor(db, family.primary.email);
  const member = await actorFor(db, family.member.email);
  const resident = await createResident(
    db,
    { now: now(), actor: primary, requestId: null },
    { ...family.resident, relationship: family.primary.relationship },
  );
  const invitation = await invite(
    db,
    { now: now(), actor: primary, requestId: null },
    resident.id,
    { email: family.member.email, relationship: family.member.relationship, level: "member" },
    publicUrl,
  );
  await acceptInvitation(db, { now: now(), actor: member, requestId: null }, invitation.token);
  const current = await currentPlan(db, resident.id);
  await updatePlan(db, { now: now(), actor: primary, requestId: null }, resident.id, {
    baseVersion: current.version,
    summary: "first plan with the GP's advice",
    plan: {
      ...current.plan,
      goals: ["stay safely at home", "keep walking every day"],
      tasks: [
        {
          id: "breakfast",
          title: "Help with breakfast",
          instructions: "Soft food; tea without sugar",
          schedule: { kind: "every_visit" },
        },
        {
          id: "walk",
          title: "Short walk outside",
          instructions: null,
          schedule: { kind: "daily", times: ["10:30"] },
        },
        {
          id: "bath",
          title: "Assisted shower",
          instructions: "Use the shower chair",
          schedule: { kind: "weekly", days: ["tue", "fri"], times: [] },
        },
      ],
      medications: [{ ...family.medication, instructions: "with food" }],
      checkInDeadline: "10:00",
      emergencyContacts: [
        { kind: "member", userId: primary.userId },
        { kind: "member", userId: member.userId },
      ],
    },
  });
  return "created";
}

class UsageError extends Error {}

/** `--simulate N` (or `--simulate=N`) and what follows it, for the simulator; null without it. */
function simulateArgs(argv: string[]): string[] | null {
  const at = argv.findIndex((a) => a === "--simulate" || a.startsWith("--simulate="));
  if (at < 0) return null;
  const inline = argv[at]!.startsWith("--simulate=") ? argv[at]!.slice("--simulate=".length) : null;
  const count = inline ?? argv[at + 1];
  if (!count || !/^\d+$/.test(count) || Number(count) < 1)
    throw new UsageError(
      "--simulate takes a number of devices, e.g. npm run demo -- --simulate 20",
    );
  const rest = [...argv.slice(0, at), ...argv.slice(at + (inline === null ? 2 : 1))];
  return ["--register-demo", "--devices", count, ...rest];
}

/** Runs the device simulator in a process of its own until it ends (Ctrl-C stops both). */
function simulate(args: string[]): Promise<number> {
  const script = fileURLToPath(new URL("../../devices/simulator.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    stdio: "inherit",
  });
  // Ctrl-C reaches both processes; this one waits for the simulator to stop its devices.
  const ignore = () => undefined;
  process.on("SIGINT", ignore);
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  return new Promise((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
}

async function main() {
  const simulation = simulateArgs(process.argv.slice(2));
  const config = loadConfig();
  const { db, close } = openDatabase(config.database);
  try {
    await migrateToLatest(db);
    const operatorEmail = "operator@demo.kincare.local";
    await ensureOperator(db, new Date(), {
      email: operatorEmail,
      password: PASSWORD,
      displayName: "Community desk",
    });
    for (const family of families) {
      const outcome = await seedFamily(db, config.PUBLIC_URL, family);
      console.log(
        `${outcome === "created" ? "seeded" : "already there"}: ${family.resident.fullName} (${family.resident.timeZone})`,
      );
    }
    console.log(`
kincare demo community is ready in ${config.database.dialect === "sqlite" ? config.database.file : "PostgreSQL"}.
Start kincare (npm start) and sign in at ${config.PUBLIC_URL} (API: POST /v1/auth/login; reference: /docs)
with any of these, password "${PASSWORD}":
  operator           ${operatorEmail}
${families.map((f) => `  ${f.primary.relationship.padEnd(9)} (primary)  ${f.primary.email}\n  ${f.member.relationship.padEnd(9)} (member)   ${f.member.email}`).join("\n")}
`);
  } finally {
    await close();
  }
  if (simulation) {
    console.log(
      "Simulated devices follow. They connect to kincare's MQTT broker and keep trying until it is up: start kincare (npm start) in another terminal if it is not running.\n",
    );
    process.exitCode = await simulate(simulation);
  }
}

main().catch((error) => {
  console.error(
    error instanceof ConfigError || error instanceof UsageError ? error.message : error,
  );
  process.exitCode = 1;
});
