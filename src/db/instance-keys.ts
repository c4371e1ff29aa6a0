// Keys this kincare installation makes once and keeps (device-secret HMAC key, later VAPID keys).
// Several processes starting together agree on one: the first insert wins, all read it back.
import { iso } from "../clock";
import type { Executor } from "./database";

export async function instanceKey(db: Executor, name: string, make: () => string): Promise<string> {
  await db
    .insertInto("instance_keys")
    .values({ name, value: make(), created_at: iso(new Date()) })
    .onConflict((oc) => oc.column("name").doNothing())
    .execute();
  const row = await db
    .selectFrom("instance_keys")
    .select("value")
    .where("name", "=", name)
    .executeTakeFirstOrThrow();
  return row.value;
}
