// What the benchmarks share: a database of their own that they drop afterwards, and a CPU
// profile summary (self time per function).
import { mkdtempSync, rmSync } from "node:fs";
import type { Profiler } from "node:inspector";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { openDatabase } from "../src/db/database";

export interface BenchDatabase {
  dialect: "sqlite" | "postgres";
  /** What DATABASE_URL should say for a kincare on this database. */
  url: string;
  /** For the log: the schema or the file. */
  where: string;
  open(poolSize: number): ReturnType<typeof openDatabase>;
  drop(): Promise<void>;
}

/** A fresh PostgreSQL schema on `postgresUrl`, or (without it) a fresh SQLite file. */
export async function benchDatabase(name: string, postgresUrl?: string): Promise<BenchDatabase> {
  if (postgresUrl) {
    const schema = `kc_${name}_${process.pid}_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    return {
      dialect: "postgres",
      url: postgresUrl,
      where: `schema ${schema}`,
      open: (poolSize) =>
        openDatabase({ dialect: "postgres", url: postgresUrl }, { schema, poolSize }),
      drop: async () => {
        const client = new pg.Client({ connectionString: postgresUrl });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), `kincare-${name}-`));
  const file = join(dir, "kincare.db");
  return {
    dialect: "sqlite",
    url: file,
    where: file,
    open: () => openDatabase({ dialect: "sqlite", file }),
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Where the CPU went: self time per function, the `top` heaviest lines. */
export function summariseProfile(profile: Profiler.Profile, top = 30): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, i) => {
    const node = byId.get(id);
    const dt = deltas[i] ?? 0;
    total += dt;
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url
      ? `${url.replace(/^.*node_modules\//, "").replace(/^.*\/main\//, "")}:${lineNumber + 1}`
      : "";
    const key = `${functionName || "(anonymous)"} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, t]) => `${((t / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
}
