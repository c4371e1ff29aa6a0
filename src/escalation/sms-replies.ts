// Replies to kincare's texts. A recipient acknowledges by replying with the alert's code, or with
// `1` / `OK` when exactly one alert waits for their number (with two, kincare asks which instead
// of guessing). A first reply from an invited number confirms it. Twilio's reserved words (STOP,
// START, HELP...) are Twilio's: kincare only records an opt-out or opt-in.
import { iso } from "../clock";
import type { Db, Executor } from "../db/database";
import { AppError } from "../errors";
import { languageOf } from "../notifications/templates";
import { type AckEffects, type Acknowledger, acknowledge } from "./acknowledge";

const OPT_OUT = new Set([
  "STOP",
  "STOPALL",
  "UNSUBSCRIBE",
  "CANCEL",
  "END",
  "QUIT",
  "REVOKE",
  "OPTOUT",
]);
const OPT_IN = new Set(["START", "UNSTOP", "YES", "OPTIN"]);
const TWILIO_HELP = new Set(["HELP", "INFO"]);
const SHORT_ACK = new Set(["1", "OK", "好", "好的"]);

interface Waiting {
  id: string;
  code: string | null;
  status: string;
  kind: string;
  residentName: string;
}

/** Alerts not yet closed whose texts went to this number. */
async function alertsTextedTo(db: Executor, phone: string): Promise<Waiting[]> {
  const rows = await db
    .selectFrom("alerts as a")
    .innerJoin("residents as r", "r.id", "a.resident_id")
    .select(["a.id", "a.code", "a.status", "a.kind", "r.full_name", "r.preferred_name"])
    .where("a.closed_at", "is", null)
    .where((eb) =>
      eb(
        "a.id",
        "in",
        eb
          .selectFrom("deliveries")
          .select("alert_id")
          .where("phone", "=", phone)
          .where("channel", "=", "sms")
          .where("purpose", "in", ["alert_step", "alert_repeat"])
          .where("status", "in", ["sent", "queued", "delivered", "sending"]),
      ),
    )
    .orderBy("a.opened_at")
    .execute();
  return rows.map((r) => ({
    id: r.id,
    code: r.code,
    status: r.status,
    kind: r.kind,
    residentName: r.preferred_name ?? r.full_name,
  }));
}

async function whoIs(db: Executor, phone: string): Promise<{ by: Acknowledger; language: string }> {
  const user = await db
    .selectFrom("users")
    .select(["id", "display_name", "language"])
    .where("phone", "=", phone)
    .where("disabled_at", "is", null)
    .executeTakeFirst();
  if (user)
    return { by: { userId: user.id, phone, name: user.display_name }, language: user.language };
  const last = await db
    .selectFrom("deliveries")
    .select(["recipient_name", "message"])
    .where("phone", "=", phone)
    .orderBy("created_at", "desc")
    .executeTakeFirst();
  const language = last
    ? ((JSON.parse(last.message) as { language?: string }).language ?? "en")
    : "en";
  return { by: { userId: null, phone, name: last?.recipient_name ?? phone }, language };
}

export interface Reply {
  /** The text to answer with (TwiML); null: say nothing. */
  text: string | null;
  acknowledgedAlertId?: string;
}

export async function handleInboundSms(
  db: Db,
  effects: AckEffects,
  input: { from: string; body: string },
  now: Date,
): Promise<Reply> {
  const word = input.body
    .trim()
    .toUpperCase()
    .replace(/[.!。！]+$/, "");
  if (OPT_OUT.has(word) || OPT_IN.has(word)) {
    await db
      .insertInto("phone_numbers")
      .values({
        phone: input.from,
        confirmed_at: null,
        opted_out_at: OPT_OUT.has(word) ? iso(now) : null,
        code_hash: null,
        code_expires_at: null,
        code_attempts: 0,
        invited_at: null,
        language: null,
        created_at: iso(now),
        updated_at: iso(now),
      })
      .onConflict((oc) =>
        oc.column("phone").doUpdateSet({
          opted_out_at: OPT_OUT.has(word) ? iso(now) : null,
          updated_at: iso(now),
        }),
      )
      .execute();
    return { text: null };
  }
  if (TWILIO_HELP.has(word)) return { text: null };

  const { by, language } = await whoIs(db, input.from);
  const zh = languageOf(language) === "zh-CN";
  const number = await db
    .selectFrom("phone_numbers")
    .selectAll()
    .where("phone", "=", input.from)
    .executeTakeFirst();
  if (number?.invited_at && !number.confirmed_at) {
    await db
      .updateTable("phone_numbers")
      .set({ confirmed_at: iso(now), updated_at: iso(now) })
      .where("phone", "=", input.from)
      .execute();
    return {
      text: zh
        ? "谢谢，您的号码已确认，将会收到 kincare 的警报短信。回复 STOP 可退订。"
        : "Thank you: this number is confirmed and will receive kincare alerts. Reply STOP to opt out.",
    };
  }

  const waiting = await alertsTextedTo(db, input.from);
  const byCode = waiting.find((a) => a.code !== null && a.code === word);
  let target: Waiting | undefined = byCode;
  if (!target && SHORT_ACK.has(word)) {
    const open = waiting.filter((a) => a.status === "open");
    if (open.length === 0) {
      return { text: zh ? "目前没有等待您处理的警报。" : "No alert is waiting for you right now." };
    }
    if (open.length > 1) {
      const list = open.map((a) => `${a.code} (${a.residentName})`).join(zh ? "，" : ", ");
      return {
        text: zh
          ? `有 ${open.length} 条警报在等待处理，请回复对应代码：${list}`
          : `${open.length} alerts are waiting. Reply with the code of the one you take: ${list}`,
      };
    }
    target = open[0];
  }
  if (!target) {
    if (waiting.length === 0) return { text: null };
    return {
      text: zh
        ? "请回复警报代码（例如 A7K3）表示由您处理。"
        : "To take charge of an alert, reply with its code (e.g. A7K3).",
    };
  }
  try {
    const done = await acknowledge(db, effects, { alertId: target.id, by, via: "sms" }, now);
    const notes = done.accessNotes
      ? zh
        ? ` 进门信息：${done.accessNotes}`
        : ` Access: ${done.accessNotes}`
      : "";
    return {
      text: zh
        ? `谢谢，由您处理${done.residentName}的警报，其他人已收到通知。${notes}`
        : `Thank you: you are handling the alert for ${done.residentName}. The others have been told.${notes}`,
      acknowledgedAlertId: target.id,
    };
  } catch (error) {
    if (error instanceof AppError && error.code === "conflict") {
      return { text: zh ? `已有人在处理：${error.message}` : `Already handled: ${error.message}` };
    }
    throw error;
  }
}
