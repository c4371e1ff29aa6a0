// Password reset by a one-time code texted to the account's confirmed phone number. The answer
// never says whether an account has that number; codes expire, allow five tries, and at most one
// is sent a minute.
import { randomInt } from "node:crypto";
import { addMs, iso } from "../clock";
import type { Db } from "../db/database";
import { AppError } from "../errors";
import { newId } from "../ids";
import { personForUser, queueMessage } from "../notifications/queue";
import type { RequestCtx } from "../request-ctx";
import { getSettings } from "../settings/settings.service";
import { completePasswordReset, issuePasswordReset } from "./accounts.service";
import { hashToken } from "./tokens";

const CODE_TTL_MS = 10 * 60_000;
const RESEND_AFTER_MS = 60_000;
const MAX_ATTEMPTS = 5;

const codeHash = (phone: string, code: string) => hashToken(`reset:${phone}:${code}`);

async function accountFor(db: Db, phone: string) {
  return db
    .selectFrom("users")
    .innerJoin("phone_numbers", "phone_numbers.phone", "users.phone")
    .select(["users.id", "phone_numbers.code_expires_at"])
    .where("users.phone", "=", phone)
    .where("users.disabled_at", "is", null)
    .where("phone_numbers.confirmed_at", "is not", null)
    .where("phone_numbers.opted_out_at", "is", null)
    .executeTakeFirst();
}

export async function sendResetCode(db: Db, ctx: RequestCtx, phone: string): Promise<void> {
  const account = await accountFor(db, phone);
  if (!account) return;
  const recent =
    account.code_expires_at &&
    Date.parse(account.code_expires_at) - CODE_TTL_MS + RESEND_AFTER_MS > ctx.now.getTime();
  if (recent) return;
  const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable("phone_numbers")
      .set({
        code_hash: codeHash(phone, code),
        code_expires_at: iso(addMs(ctx.now, CODE_TTL_MS)),
        code_attempts: 0,
        updated_at: iso(ctx.now),
      })
      .where("phone", "=", phone)
      .execute();
    const person = await personForUser(trx, account.id);
    if (!person) return;
    await queueMessage(
      trx,
      person,
      {
        purpose: "password_reset_code",
        message: { t: "password_reset_code", code },
        channels: ["sms"],
        dedupeKey: `password_reset:${newId()}`,
        requireConfirmedPhone: true,
      },
      ctx.now,
      await getSettings(trx),
    );
  });
}

export async function resetWithCode(
  db: Db,
  ctx: RequestCtx,
  input: { phone: string; code: string; newPassword: string },
  publicUrl: string,
): Promise<void> {
  const invalid = () =>
    new AppError("reset_token_invalid", "this code is not valid: ask for a new one");
  const account = await accountFor(db, input.phone);
  if (!account) throw invalid();
  const number = await db
    .selectFrom("phone_numbers")
    .selectAll()
    .where("phone", "=", input.phone)
    .executeTakeFirstOrThrow();
  if (!number.code_hash || !number.code_expires_at || number.code_expires_at <= iso(ctx.now)) {
    throw invalid();
  }
  if (number.code_attempts >= MAX_ATTEMPTS) {
    throw new AppError("too_many_attempts", "too many wrong codes: ask for a new one");
  }
  if (number.code_hash !== codeHash(input.phone, input.code)) {
    await db
      .updateTable("phone_numbers")
      .set((eb) => ({ code_attempts: eb("code_attempts", "+", 1), updated_at: iso(ctx.now) }))
      .where("phone", "=", input.phone)
      .execute();
    throw invalid();
  }
  // Used once: of two requests racing with the right code, one clears it and the other fails.
  const used = await db
    .updateTable("phone_numbers")
    .set({ code_hash: null, code_expires_at: null, code_attempts: 0, updated_at: iso(ctx.now) })
    .where("phone", "=", input.phone)
    .where("code_hash", "=", number.code_hash)
    .executeTakeFirst();
  if (Number(used.numUpdatedRows) === 0) throw invalid();
  const { token } = await issuePasswordReset(db, ctx, account.id, publicUrl);
  await completePasswordReset(db, ctx, { token, newPassword: input.newPassword });
}
