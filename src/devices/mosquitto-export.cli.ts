// npm run devices:mosquitto-passwords > /etc/mosquitto/kincare.passwd
// Writes every active device's credentials in Mosquitto's password-file format (the service
// user is added with --service-user NAME --service-password-stdin). Reload Mosquitto after.
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config";
import { openDatabase } from "../db/database";
import { migrateToLatest } from "../db/migrator";
import { mosquittoPasswordLines } from "./devices.service";
import { mosquittoPasswordHash, mosquittoPasswordLine } from "./mosquitto";

async function main() {
  const { values } = parseArgs({
    options: { "service-user": { type: "string" }, "service-password-stdin": { type: "boolean" } },
  });
  let service = "";
  if (values["service-user"]) {
    let password = "";
    if (values["service-password-stdin"])
      for await (const chunk of process.stdin) password += chunk;
    password = password.replace(/\r?\n$/, "");
    if (!password)
      throw new Error(
        "give the service user's password on standard input with --service-password-stdin",
      );
    service = mosquittoPasswordLine(values["service-user"], mosquittoPasswordHash(password));
  }
  const config = loadConfig();
  const { db, close } = openDatabase(config.database);
  try {
    await migrateToLatest(db);
    process.stdout.write(
      service + (await mosquittoPasswordLines(db)).map((l) => `${l}\n`).join(""),
    );
  } finally {
    await close();
  }
}

main().catch((error) => {
  console.error(
    error instanceof ConfigError ? error.message : error instanceof Error ? error.message : error,
  );
  process.exitCode = 1;
});
