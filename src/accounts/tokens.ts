import { createHash } from "node:crypto";

/** Tokens are random and long, so a fast hash is enough; only the hash is stored. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
