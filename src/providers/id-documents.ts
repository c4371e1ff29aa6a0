// Workers' identity document numbers: AES-256-GCM under a key this installation makes once,
// bound to the worker's id (a ciphertext copied to another row does not decrypt). Only the last
// four characters are kept in clear, for the masked display; the number is never logged or returned.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { Executor } from "../db/database";
import { instanceKey } from "../db/instance-keys";

async function key(db: Executor): Promise<Buffer> {
  return Buffer.from(
    await instanceKey(db, "worker_id_docs", () => randomBytes(32).toString("base64url")),
    "base64url",
  );
}

export async function sealIdDocument(db: Executor, workerId: string, number: string) {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", await key(db), iv);
  cipher.setAAD(Buffer.from(workerId));
  const body = Buffer.concat([cipher.update(number, "utf8"), cipher.final()]);
  const sealed = ["v1", iv, cipher.getAuthTag(), body]
    .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
    .join(".");
  return { cipher: sealed, last4: number.replace(/[\s-]/g, "").slice(-4) };
}

/** For the few places that must read the number (none over the API today). */
export async function openIdDocument(db: Executor, workerId: string, sealed: string) {
  const [version, iv, tag, body] = sealed.split(".");
  if (version !== "v1" || !iv || !tag || body === undefined)
    throw new Error("unknown identity document format");
  const decipher = createDecipheriv("aes-256-gcm", await key(db), Buffer.from(iv, "base64url"));
  decipher.setAAD(Buffer.from(workerId));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([
    decipher.update(Buffer.from(body, "base64url")),
    decipher.final(),
  ]).toString("utf8");
}

export function maskIdDocument(last4: string): string {
  return `••••••${last4}`;
}
