// Every money-moving request carries an Idempotency-Key. The key, a hash of the request and the
// answer are written in the same transaction as the money they moved: a retry of a request that
// went through gets the first answer back and moves nothing; a retry of one that failed (and so
// moved nothing) runs again; the same key with a different request is refused.
import { createHash } from "node:crypto";
import type { Context } from "hono";
import { iso } from "../clock";
import type { Db, Trx } from "../db/database";
import { AppError } from "../errors";
import { authedCtx } from "../http/auth.middleware";
import type { AppDeps } from "../http/context";

export interface IdempotentRequest {
  /** Who and what: the same key from two users, or for two routes, are different keys. */
  scope: string;
  key: string;
  /** The request as it matters (method, path, body). */
  fingerprint: unknown;
}

export interface Answer<T> {
  status: number;
  body: T;
  /** True when this is the stored answer of an earlier request with the same key. */
  replayed: boolean;
}

const KEY = /^[\w.:-]{8,128}$/;

/** The Idempotency-Key header of a money-moving request; required. */
export function idempotencyKey(c: Context): string {
  const key = c.req.header("idempotency-key");
  if (!key) {
    throw new AppError(
      "idempotency_key_required",
      "this request moves money: send an Idempotency-Key header (a unique id per intended payment, reused on retries)",
    );
  }
  if (!KEY.test(key)) {
    throw new AppError(
      "bad_request",
      "Idempotency-Key must be 8 to 128 letters, digits, '-', '_', '.' or ':'",
    );
  }
  return key;
}

const hashOf = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("hex");

export async function idempotent<T>(
  db: Db,
  request: IdempotentRequest,
  now: Date,
  run: (trx: Trx) => Promise<{ status: number; body: T }>,
): Promise<Answer<T>> {
  const hash = hashOf(request.fingerprint);
  return db.transaction().execute(async (trx) => {
    const earlier = await trx
      .selectFrom("idempotency_keys")
      .selectAll()
      .where("scope", "=", request.scope)
      .where("key", "=", request.key)
      .executeTakeFirst();
    if (earlier) return replay<T>(earlier, hash);
    const answer = await run(trx);
    const inserted = await trx
      .insertInto("idempotency_keys")
      .values({
        scope: request.scope,
        key: request.key,
        request_hash: hash,
        response_status: answer.status,
        response_body: JSON.stringify(answer.body),
        created_at: iso(now),
      })
      .onConflict((oc) => oc.columns(["scope", "key"]).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
      // A concurrent request with this key committed first: undo this one, answer with that one.
      throw new AppError(
        "conflict",
        "a request with this Idempotency-Key is being processed: retry",
      );
    }
    return { ...answer, replayed: false };
  });
}

function replay<T>(
  row: { request_hash: string; response_status: number; response_body: string },
  hash: string,
): Answer<T> {
  if (row.request_hash !== hash) {
    throw new AppError(
      "idempotency_key_reused",
      "this Idempotency-Key was already used for a different request: use a new key",
    );
  }
  return {
    status: row.response_status,
    body: JSON.parse(row.response_body) as T,
    replayed: true,
  };
}

/**
 * A money-moving route, run once per Idempotency-Key of the signed-in user: `name` keeps one
 * route's keys apart from another's. Answers with the body (the stored one on a retry).
 */
export async function once<T>(
  c: Context,
  deps: AppDeps,
  name: string,
  fingerprint: unknown,
  status: number,
  run: (trx: Trx, ctx: ReturnType<typeof authedCtx>) => Promise<T>,
): Promise<T> {
  const ctx = authedCtx(c, deps);
  const answer = await idempotent<T>(
    deps.db,
    { scope: `${ctx.actor.userId}:${name}`, key: idempotencyKey(c), fingerprint },
    ctx.now,
    async (trx) => ({ status, body: await run(trx, ctx) }),
  );
  return answer.body;
}
