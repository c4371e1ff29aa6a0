// The page a push notification or a text links to. GET shows the alert and a button, and changes
// nothing (a link preview must never silence an SOS); the button POSTs the same signed token,
// which acknowledges. Whoever takes charge then sees the resident's access notes.
import type { Context } from "hono";
import { Hono } from "hono";
import { AppError } from "../errors";
import type { AppDeps, AppEnv } from "../http/context";
import { languageOf } from "../notifications/templates";
import { type Acknowledger, acknowledge } from "./acknowledge";

function esc(text: string): string {
  return text.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function page(title: string, body: string, lang: "en" | "zh-CN") {
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>${esc(title)}</title>
<style>body{font:18px/1.5 system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}
button{font-size:1.3rem;padding:.8rem 1.4rem;border-radius:.5rem;border:0;background:#b3261e;color:#fff;width:100%}
.note{background:#f3f0e8;padding:1rem;border-radius:.5rem;white-space:pre-wrap}</style></head>
<body>${body}</body></html>`;
}

async function load(c: Context<AppEnv>, deps: AppDeps) {
  const claim = deps.alerting.links.verify(c.req.param("token") ?? "", deps.clock.now());
  if (!claim) return null;
  const alert = await deps.db
    .selectFrom("alerts as a")
    .innerJoin("residents as r", "r.id", "a.resident_id")
    .leftJoin("users as u", "u.id", "a.acknowledged_by")
    .select([
      "a.id",
      "a.summary",
      "a.status",
      "a.opened_at",
      "a.acknowledged_phone",
      "r.full_name",
      "r.preferred_name",
      "r.language",
      "u.display_name as ack_name",
    ])
    .where("a.id", "=", claim.alertId)
    .executeTakeFirst();
  if (!alert) return null;
  let by: Acknowledger;
  let language = alert.language;
  if (claim.userId) {
    const user = await deps.db
      .selectFrom("users")
      .select(["id", "display_name", "phone", "language", "disabled_at"])
      .where("id", "=", claim.userId)
      .executeTakeFirst();
    if (!user || user.disabled_at) return null;
    by = { userId: user.id, phone: user.phone, name: user.display_name };
    language = user.language;
  } else {
    const sent = await deps.db
      .selectFrom("deliveries")
      .select("recipient_name")
      .where("alert_id", "=", alert.id)
      .where("phone", "=", claim.phone ?? "")
      .executeTakeFirst();
    if (!sent) return null;
    by = { userId: null, phone: claim.phone, name: sent.recipient_name ?? claim.phone ?? "" };
  }
  return { claim, alert, by, lang: languageOf(language) };
}

const gone = (c: Context<AppEnv>) =>
  c.html(
    page("kincare", "<h1>This link has expired</h1><p>Open kincare to see the alert.</p>", "en"),
    404,
  );

export function ackPageRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/a/:token", async (c) => {
    const found = await load(c, deps);
    if (!found) return gone(c);
    const { alert, lang } = found;
    const zh = lang === "zh-CN";
    const name = esc(alert.preferred_name ?? alert.full_name);
    c.header("cache-control", "no-store");
    c.header("referrer-policy", "no-referrer");
    if (alert.status !== "open") {
      const who = esc(alert.ack_name ?? alert.acknowledged_phone ?? (zh ? "有人" : "someone"));
      const text =
        alert.status === "acknowledged"
          ? zh
            ? `${who}正在处理这条警报。`
            : `${who} is taking care of this alert.`
          : zh
            ? "这条警报已关闭。"
            : "This alert is closed.";
      return c.html(
        page("kincare", `<h1>${name}</h1><p>${esc(alert.summary)}</p><p>${text}</p>`, lang),
      );
    }
    const body = `<h1>${name}</h1><p>${esc(alert.summary)}</p>
<p>${zh ? "发生时间" : "Since"} <time datetime="${esc(alert.opened_at)}">${esc(alert.opened_at.slice(11, 16))} UTC</time></p>
<form method="post"><button type="submit">${zh ? "我来处理" : "I'm handling it"}</button></form>`;
    return c.html(page(zh ? "紧急警报" : "Alert", body, lang));
  });

  app.post("/a/:token", async (c) => {
    const found = await load(c, deps);
    if (!found) return gone(c);
    const { alert, by, lang } = found;
    const zh = lang === "zh-CN";
    c.header("cache-control", "no-store");
    try {
      const done = await acknowledge(
        deps.db,
        deps.alerting.ack,
        { alertId: alert.id, by, via: "push", requestId: c.get("requestId") },
        deps.clock.now(),
      );
      const notes = done.accessNotes
        ? `<h2>${zh ? "进门信息" : "Getting in"}</h2><p class="note">${esc(done.accessNotes)}</p>`
        : "";
      const text = zh
        ? `<h1>谢谢，由您处理</h1><p>其他人已收到通知：您正在处理${esc(done.residentName)}的警报。</p>`
        : `<h1>Thank you: you are handling it</h1><p>The others have been told you are taking care of ${esc(done.residentName)}.</p>`;
      return c.html(page("kincare", text + notes, lang));
    } catch (error) {
      if (
        error instanceof AppError &&
        (error.code === "conflict" || error.code === "invalid_state")
      ) {
        return c.html(page("kincare", `<h1>${esc(error.message)}</h1>`, lang), 409);
      }
      throw error;
    }
  });

  return app;
}
