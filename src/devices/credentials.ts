// Device secrets: long and random, shown once; kept as a keyed fast hash (no CPU storm when a
// thousand devices reconnect) and in Mosquitto's format for an external broker.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Executor } from "../db/database";
import { instanceKey } from "../db/instance-keys";
import { newToken } from "../ids";
import { mosquittoPasswordHash } from "./mosquitto";

export interface SecretHasher {
  hash(secret: string): string;
  verify(secret: string, stored: string): boolean;
}

export async function loadSecretHasher(db: Executor): Promise<SecretHasher> {
  const key = Buffer.from(
    await instanceKey(db, "device_secret_hmac", () => randomBytes(32).toString("base64url")),
    "base64url",
  );
  const hash = (secret: string) => createHmac("sha256", key).update(secret).digest("hex");
  return {
    hash,
    verify(secret, stored) {
      const a = Buffer.from(hash(secret), "hex");
      const b = Buffer.from(stored, "hex");
      return a.length === b.length && timingSafeEqual(a, b);
    },
  };
}

export function newDeviceSecret(hasher: SecretHasher) {
  const secret = newToken(32);
  return { secret, secretHash: hasher.hash(secret), mosquittoHash: mosquittoPasswordHash(secret) };
}
