// The command-line tools a deployer runs: create-operator and demo, as real processes.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./helpers/test-db";

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(() => testDb.drop());

function run(
  script: string,
  args: string[],
  stdin?: string,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
      env: { ...process.env, ...testDb.env, LOG_LEVEL: "silent" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out, err }));
    child.stdin.end(stdin ?? "");
  });
}

async function count(table: "users" | "residents" | "circle_members" | "care_plan_versions") {
  const { db, close } = testDb.open();
  try {
    const row = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  } finally {
    await close();
  }
}

describe("create-operator", () => {
  it("creates an operator from a password on standard input, then only grants the role", async () => {
    const first = await run(
      "src/accounts/create-operator.cli.ts",
      ["--email", "Desk@Example.org", "--password-stdin"],
      "a long desk password\n",
    );
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain("operator desk@example.org created");
    const { db, close } = testDb.open();
    try {
      const user = await db
        .selectFrom("users")
        .select("id")
        .where("email", "=", "desk@example.org")
        .executeTakeFirstOrThrow();
      const roles = await db
        .selectFrom("user_roles")
        .select("role")
        .where("user_id", "=", user.id)
        .execute();
      expect(roles.map((r) => r.role)).toEqual(["operator"]);
    } finally {
      await close();
    }
    const again = await run("src/accounts/create-operator.cli.ts", [
      "--email",
      "desk@example.org",
      "--password",
      "another long password",
    ]);
    expect(again.code).toBe(0);
    expect(again.out).toContain("already had an account");
  });

  it("refuses a short password and says how to call it", async () => {
    const res = await run("src/accounts/create-operator.cli.ts", [
      "--email",
      "x@example.org",
      "--password",
      "short",
    ]);
    expect(res.code).toBe(2);
    expect(res.err).toContain("at least 12 characters");
    expect(res.err).toContain("usage:");
  });
});

describe("demo", () => {
  it("seeds three residents with their families and plans, and running it twice changes nothing", async () => {
    const first = await run("src/demo/demo.cli.ts", []);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain("operator@demo.kincare.local");
    const counts = {
      residents: await count("residents"),
      circle: await count("circle_members"),
      plans: await count("care_plan_versions"),
      users: await count("users"),
    };
    expect(counts.residents).toBe(3);
    expect(counts.circle).toBe(6);
    expect(counts.plans).toBe(6);
    const second = await run("src/demo/demo.cli.ts", []);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toContain("already there: Wang Shulan");
    expect({
      residents: await count("residents"),
      circle: await count("circle_members"),
      plans: await count("care_plan_versions"),
      users: await count("users"),
    }).toEqual(counts);
  });
});
