// npm run create-operator -- --email desk@example.org --password '...' [--name "Night desk"]
// or: echo "$PASSWORD" | npm run create-operator -- --email desk@example.org --password-stdin
import { parseArgs } from "node:util";
import { z } from "zod";
import { ConfigError, loadConfig } from "../config";
import { openDatabase } from "../db/database";
import { migrateToLatest } from "../db/migrator";
import { ensureOperator } from "./accounts.service";

async function readStdin(): Promise<string> {
  let data = "";
  for await (const chunk of process.stdin) data += chunk;
  return data.replace(/\r?\n$/, "");
}

async function main() {
  const { values } = parseArgs({
    options: {
      email: { type: "string" },
      password: { type: "string" },
      "password-stdin": { type: "boolean" },
      name: { type: "string" },
    },
  });
  const password = values["password-stdin"] ? await readStdin() : values.password;
  const input = z
    .object({
      email: z
        .email({ message: "--email must be an email address" })
        .transform((v) => v.toLowerCase()),
      password: z
        .string({ message: "give --password or --password-stdin" })
        .min(12, "the password needs at least 12 characters"),
      name: z.string().min(1).optional(),
    })
    .safeParse({ email: values.email, password, name: values.name });
  if (!input.success) {
    console.error(input.error.issues.map((i) => i.message).join("\n"));
    console.error(
      "usage: npm run create-operator -- --email <email> --password <password> [--name <name>]",
    );
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  const { db, close } = openDatabase(config.database);
  try {
    await migrateToLatest(db);
    const { created } = await ensureOperator(db, new Date(), {
      email: input.data.email,
      password: input.data.password,
      ...(input.data.name ? { displayName: input.data.name } : {}),
    });
    console.log(
      created
        ? `operator ${input.data.email} created`
        : `${input.data.email} already had an account: it now holds the operator role (its password is unchanged)`,
    );
  } finally {
    await close();
  }
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exitCode = 1;
});
