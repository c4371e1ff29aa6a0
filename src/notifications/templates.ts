// What kincare says, in each recipient's language (English and Simplified Chinese) and with
// times in their time zone. Messages are stored as data (a template name and its parameters)
// and rendered here at send time, so a retry renders the same words.
import { z } from "zod";

export const languages = ["en", "zh-CN"] as const;
export type Language = (typeof languages)[number];

/** Anything not Chinese is spoken to in English. */
export function languageOf(tag: string | null | undefined): Language {
  return tag?.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export const MessageSchema = z.discriminatedUnion("t", [
  z.object({ t: z.literal("alert"), alertId: z.string() }),
  z.object({ t: z.literal("alert_repeat"), alertId: z.string() }),
  z.object({ t: z.literal("alert_handled"), alertId: z.string(), byName: z.string() }),
  z.object({ t: z.literal("alert_cancelled"), alertId: z.string() }),
  z.object({ t: z.literal("alert_bundle"), alertIds: z.array(z.string()) }),
  z.object({ t: z.literal("phone_code"), code: z.string().optional() }),
  z.object({ t: z.literal("phone_invite"), residentName: z.string(), byName: z.string() }),
  z.object({ t: z.literal("on_call_invite"), providerName: z.string() }),
  z.object({ t: z.literal("worker_invite"), providerName: z.string() }),
  z.object({ t: z.literal("visits_unassigned"), workerName: z.string(), visits: z.number() }),
  z.object({
    t: z.literal("promotion_decided"),
    title: z.string(),
    approved: z.boolean(),
    reason: z.string(),
  }),
  z.object({ t: z.literal("password_reset_code"), code: z.string().optional() }),
  z.object({
    t: z.literal("invitation"),
    byName: z.string(),
    residentName: z.string(),
    url: z.string().optional(),
  }),
  z.object({ t: z.literal("desk_handover"), alertId: z.string(), fromName: z.string() }),
  z.object({
    t: z.literal("dispute_decided"),
    residentName: z.string(),
    visitDate: z.string(),
    outcome: z.enum(["release", "refund", "split"]),
    refund: z.string(),
    note: z.string(),
  }),
  z.object({
    t: z.literal("visit_entry"),
    residentName: z.string(),
    workerName: z.string(),
    kind: z.enum(["check_in", "check_out"]),
    at: z.string(),
    done: z.number().optional(),
    due: z.number().optional(),
  }),
  z.object({
    t: z.literal("visit_exception"),
    residentName: z.string(),
    workerName: z.string(),
    kind: z.enum(["check_in", "check_out"]),
    exception: z.string(),
    reason: z.string(),
    at: z.string(),
  }),
  z.object({ t: z.literal("visit_late"), residentName: z.string(), startsAt: z.string() }),
  z.object({
    t: z.literal("visit_reassigned"),
    residentName: z.string(),
    workerName: z.string(),
    previousName: z.string(),
    startsAt: z.string(),
    /** How many later visits of the series changed too. */
    later: z.number().optional(),
  }),
  z.object({
    t: z.literal("visit_unassigned"),
    residentName: z.string(),
    startsAt: z.string(),
    later: z.number().optional(),
  }),
  z.object({
    t: z.literal("worker_day"),
    visits: z.number(),
    firstAt: z.string(),
    residentName: z.string(),
    address: z.string(),
  }),
  z.object({
    t: z.literal("presence_code"),
    residentName: z.string(),
    workerName: z.string(),
    startsAt: z.string(),
  }),
  z.object({
    t: z.literal("wallet_short"),
    residentName: z.string(),
    needed: z.string(),
    visitDate: z.string(),
  }),
]);
export type Message = z.infer<typeof MessageSchema>;

/** The facts about an alert that a message about it needs. */
export interface AlertFacts {
  id: string;
  kind: string;
  severity: string;
  residentName: string;
  openedAt: string;
  code: string | null;
  details: Record<string, unknown> | null;
}

export interface Rendered {
  title: string;
  body: string;
  /** The SMS text (push carries the link separately). */
  sms: string;
}

const kindNames: Record<string, Record<Language, string>> = {
  sos: { en: "pressed the SOS button", "zh-CN": "按下了紧急求助按钮" },
  fall: { en: "may have fallen", "zh-CN": "可能摔倒了" },
  no_motion: { en: "has not moved for a long time", "zh-CN": "长时间没有活动" },
  no_activity: { en: "shows no sign of activity", "zh-CN": "没有任何活动迹象" },
  no_check_in: { en: "has not checked in today", "zh-CN": "今天还没有报平安" },
  door_open_night: { en: "opened a door in the night", "zh-CN": "夜间开门" },
  tamper: { en: "has a device reporting tampering", "zh-CN": "的设备报告被拆动" },
  low_battery: { en: "has a device with a low battery", "zh-CN": "的设备电量低" },
  device_offline: { en: "has a device that stopped reporting", "zh-CN": "的设备已离线" },
  vital: { en: "has a reading outside the range", "zh-CN": "的测量值超出范围" },
  visit_late: {
    en: "has a care visit that has not started on time",
    "zh-CN": "的上门服务未按时开始",
  },
  visit_missed: { en: "has a care visit nobody came to", "zh-CN": "的上门服务无人到场" },
  visit_open: {
    en: "has a care visit that was never checked out",
    "zh-CN": "的上门服务一直未签退",
  },
};

const vitalNames: Record<string, Record<Language, string>> = {
  heart_rate: { en: "heart rate", "zh-CN": "心率" },
  blood_pressure: { en: "blood pressure", "zh-CN": "血压" },
  spo2: { en: "blood oxygen", "zh-CN": "血氧" },
  body_temperature: { en: "temperature", "zh-CN": "体温" },
  blood_glucose: { en: "blood glucose", "zh-CN": "血糖" },
  weight: { en: "weight", "zh-CN": "体重" },
  respiratory_rate: { en: "breathing rate", "zh-CN": "呼吸频率" },
};

export function formatTime(at: string | Date, timeZone: string, language: Language): string {
  const date = typeof at === "string" ? new Date(at) : at;
  return new Intl.DateTimeFormat(language === "zh-CN" ? "zh-CN" : "en-GB", {
    timeZone,
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(date);
}

function what(alert: AlertFacts, lang: Language): string {
  if (alert.kind === "vital" && alert.details) {
    const type = String(alert.details.type ?? "");
    const name = vitalNames[type]?.[lang] ?? type;
    const value = `${String(alert.details.value ?? "")} ${String(alert.details.unit ?? "")}`.trim();
    return lang === "zh-CN" ? `的${name}为 ${value}，超出范围` : `has a ${name} of ${value}`;
  }
  return kindNames[alert.kind]?.[lang] ?? (lang === "zh-CN" ? "需要关注" : "needs attention");
}

function severityWord(severity: string, lang: Language): string {
  if (lang === "zh-CN") return severity === "critical" ? "紧急" : "提醒";
  return severity === "critical" ? "URGENT" : "Notice";
}

function alertText(alert: AlertFacts, tz: string, lang: Language, repeat: boolean) {
  const time = formatTime(alert.openedAt, tz, lang);
  const sev = severityWord(alert.severity, lang);
  if (lang === "zh-CN") {
    const lead = repeat
      ? `${alert.residentName}再次按下了紧急求助按钮`
      : `${alert.residentName}${what(alert, lang)}`;
    const title = `${sev}：${lead}`;
    const body = `${lead}（${time}）。`;
    const reply = alert.code ? `回复 ${alert.code}（或 1）表示由您负责处理。` : "";
    return {
      title,
      body: `${body}打开查看并确认由您处理。`,
      sms: `【kincare】${title}（${time}）。${reply}`,
    };
  }
  const lead = repeat
    ? `${alert.residentName} pressed the SOS button again`
    : `${alert.residentName} ${what(alert, lang)}`;
  const title = `${sev}: ${lead}`;
  const reply = alert.code ? ` Reply ${alert.code} (or 1) to take charge.` : "";
  return {
    title,
    body: `${lead} at ${time}. Open to take charge.`,
    sms: `kincare ${sev}: ${lead} at ${time}.${reply}`,
  };
}

export interface RenderInput {
  message: Message;
  language: Language;
  timeZone: string;
  /** Facts about the alerts the message names, looked up by the caller. */
  alerts: Map<string, AlertFacts>;
  /** A link the SMS may carry (the acknowledgement page). */
  link?: string | undefined;
}

export function render(input: RenderInput): Rendered {
  const { message: m, language: lang, timeZone: tz } = input;
  const zh = lang === "zh-CN";
  const alert = (id: string) => {
    const a = input.alerts.get(id);
    if (!a) throw new Error(`alert ${id} is needed to render this message`);
    return a;
  };
  const withLink = (r: Rendered): Rendered =>
    input.link ? { ...r, sms: `${r.sms} ${input.link}` } : r;
  switch (m.t) {
    case "alert":
      return withLink(alertText(alert(m.alertId), tz, lang, false));
    case "alert_repeat":
      return withLink(alertText(alert(m.alertId), tz, lang, true));
    case "alert_handled": {
      const a = alert(m.alertId);
      const text = zh
        ? `${m.byName}正在处理${a.residentName}的警报。`
        : `${m.byName} is taking care of the alert for ${a.residentName}.`;
      return {
        title: zh ? "已有人处理" : "Someone is handling it",
        body: text,
        sms: `kincare: ${text}`,
      };
    }
    case "alert_cancelled": {
      const a = alert(m.alertId);
      const text = zh
        ? `${a.residentName}取消了紧急求助：是误按。`
        : `${a.residentName} cancelled the SOS: it was pressed by mistake.`;
      return { title: zh ? "已取消" : "SOS cancelled", body: text, sms: `kincare: ${text}` };
    }
    case "desk_handover": {
      const a = alert(m.alertId);
      const text = zh
        ? `${m.fromName}把${a.residentName}的警报交给了您。`
        : `${m.fromName} handed you the alert for ${a.residentName}.`;
      return withLink({
        title: zh ? "交接警报" : "Alert handed over",
        body: text,
        sms: `kincare: ${text}`,
      });
    }
    case "alert_bundle": {
      const items = m.alertIds.map((id) => alert(id));
      const lines = items.map(
        (a) => `${a.residentName} ${what(a, lang)} (${formatTime(a.openedAt, tz, lang)})`,
      );
      const title = zh
        ? `${items.length} 条提醒`
        : `${items.length} notice${items.length === 1 ? "" : "s"}`;
      const body = lines.join(zh ? "；" : "; ");
      return { title, body, sms: `kincare: ${body}` };
    }
    case "phone_code": {
      const text = zh
        ? `您的 kincare 验证码是 ${m.code ?? ""}，10 分钟内有效。`
        : `Your kincare confirmation code is ${m.code ?? ""}. It expires in 10 minutes.`;
      return { title: "kincare", body: text, sms: text };
    }
    case "password_reset_code": {
      const text = zh
        ? `您的 kincare 重置密码验证码是 ${m.code ?? ""}。如非本人操作请忽略。`
        : `Your kincare password reset code is ${m.code ?? ""}. Ignore this if you did not ask.`;
      return { title: "kincare", body: text, sms: text };
    }
    case "invitation": {
      const text = zh
        ? `${m.byName}邀请您加入${m.residentName}的 kincare 家庭圈：${m.url ?? ""}`
        : `${m.byName} invited you to ${m.residentName}'s family circle on kincare: ${m.url ?? ""}`;
      return { title: "kincare", body: text, sms: text };
    }
    case "dispute_decided": {
      const what = {
        release: zh ? "款项支付给服务商" : "the money goes to the provider",
        refund: zh ? "全额退回钱包" : "the money goes back to the wallet",
        split: zh
          ? `退回 ${m.refund}，其余支付给服务商`
          : `${m.refund} goes back to the wallet, the rest to the provider`,
      }[m.outcome];
      const text = zh
        ? `${m.residentName} ${m.visitDate} 的上门服务争议已处理：${what}。说明：${m.note}`
        : `The dispute about ${m.residentName}'s visit on ${m.visitDate} is decided: ${what}. Note: ${m.note}`;
      return { title: zh ? "争议已处理" : "Dispute decided", body: text, sms: `kincare: ${text}` };
    }
    case "visit_entry": {
      const time = formatTime(m.at, tz, lang);
      const tasks =
        m.due !== undefined && m.done !== undefined
          ? zh
            ? `，完成 ${m.done}/${m.due} 项`
            : `, ${m.done} of ${m.due} tasks done`
          : "";
      const text =
        m.kind === "check_in"
          ? zh
            ? `${m.workerName}已于 ${time} 到达${m.residentName}家`
            : `${m.workerName} arrived at ${m.residentName}'s at ${time}`
          : zh
            ? `${m.workerName}已于 ${time} 离开${m.residentName}家${tasks}`
            : `${m.workerName} left ${m.residentName}'s at ${time}${tasks}`;
      return { title: zh ? "上门服务" : "Care visit", body: text, sms: `kincare: ${text}` };
    }
    case "visit_exception": {
      const time = formatTime(m.at, tz, lang);
      const what =
        {
          outside_radius: zh ? "不在住址附近" : "away from the home",
          position_too_vague: zh ? "定位不够准确" : "with too vague a position",
          no_proof: zh ? "没有到场证明" : "without proof of presence",
          after_settlement: zh
            ? "（离线记录，送达时该服务已退款）"
            : "(an offline entry that arrived after the visit was refunded)",
        }[m.exception] ?? m.exception;
      const act =
        m.kind === "check_in" ? (zh ? "签到" : "checked in") : zh ? "签退" : "checked out";
      const text = zh
        ? `${m.workerName}于 ${time} 在${m.residentName}的上门服务${act}时${what}。说明：${m.reason}`
        : `${m.workerName} ${act} for ${m.residentName}'s visit at ${time} ${what}. Reason given: ${m.reason}`;
      return {
        title: zh ? "上门签到异常" : "Visit check needs a look",
        body: text,
        sms: `kincare: ${text}`,
      };
    }
    case "visit_late": {
      const time = formatTime(m.startsAt, tz, lang);
      const text = zh
        ? `${m.residentName} ${time} 的上门服务还没有开始，已通知服务商。`
        : `${m.residentName}'s care visit due at ${time} has not started yet. The provider has been told.`;
      return {
        title: zh ? "上门服务迟到" : "Visit running late",
        body: text,
        sms: `kincare: ${text}`,
      };
    }
    case "visit_reassigned": {
      const time = formatTime(m.startsAt, tz, lang);
      const more = m.later
        ? zh
          ? `，之后的 ${m.later} 次也是`
          : `, and to the ${m.later} visit${m.later === 1 ? "" : "s"} after it`
        : "";
      const text = zh
        ? `${m.residentName} ${time} 的上门服务改由${m.workerName}前来（原为${m.previousName}）${more}。`
        : `${m.workerName} is coming to ${m.residentName} at ${time} instead of ${m.previousName}${more}.`;
      return {
        title: zh ? "护理员变更" : "A different carer is coming",
        body: text,
        sms: `kincare: ${text}`,
      };
    }
    case "visit_unassigned": {
      const time = formatTime(m.startsAt, tz, lang);
      const more = m.later ? (zh ? `及之后的 ${m.later} 次` : ` and the ${m.later} after it`) : "";
      const text = zh
        ? `您不再负责${m.residentName} ${time} 的上门服务${more}，已由他人接替。`
        : `You are no longer on ${m.residentName}'s visit at ${time}${more}: someone else is going.`;
      return {
        title: zh ? "上门安排变更" : "Visit reassigned",
        body: text,
        sms: `kincare: ${text}`,
      };
    }
    case "worker_day": {
      const time = formatTime(m.firstAt, tz, lang);
      const text = zh
        ? `今天有 ${m.visits} 次上门服务，第一次 ${time}：${m.residentName}，${m.address}。`
        : `You have ${m.visits} visit${m.visits === 1 ? "" : "s"} today. First at ${time}: ${m.residentName}, ${m.address}.`;
      return {
        title: zh ? "今日上门安排" : "Your visits today",
        body: text,
        sms: `kincare: ${text}`,
      };
    }
    case "presence_code": {
      const time = formatTime(m.startsAt, tz, lang);
      const text = zh
        ? `${m.workerName}已到${m.residentName}家门口（${time} 的上门服务）。请在 kincare 中输入护理员告诉您的验证码确认。`
        : `${m.workerName} is at ${m.residentName}'s door for the ${time} visit. Confirm in kincare with the code they give you.`;
      return withLink({
        title: zh ? "请确认护理员到场" : "Confirm the carer is there",
        body: text,
        sms: `kincare: ${text}`,
      });
    }
    case "wallet_short": {
      const text = zh
        ? `${m.residentName}的钱包余额不足，${m.visitDate} 的上门服务需要 ${m.needed}。请尽快充值。`
        : `${m.residentName}'s wallet cannot cover the visit on ${m.visitDate} (${m.needed} needed). Please top it up.`;
      return {
        title: zh ? "钱包余额不足" : "Wallet running low",
        body: text,
        sms: `kincare: ${text}`,
      };
    }
    case "on_call_invite": {
      const text = zh
        ? `${m.providerName}将您设为 kincare 的值班联系人。回复任意内容即可接收上门服务的紧急短信（迟到、缺席、未签退）。`
        : `${m.providerName} named you its on-call person on kincare. Reply to this text (any word) to receive urgent visit alerts (late, missed or open visits).`;
      return { title: "kincare", body: text, sms: `kincare: ${text}` };
    }
    case "promotion_decided": {
      const text = m.approved
        ? zh
          ? `您的优惠“${m.title}”已通过审核。${m.reason}`
          : `Your promotion "${m.title}" was approved. ${m.reason}`
        : zh
          ? `您的优惠“${m.title}”未通过审核：${m.reason}`
          : `Your promotion "${m.title}" was not approved: ${m.reason}`;
      return {
        title: zh ? "优惠审核结果" : "Promotion decided",
        body: text.trim(),
        sms: `kincare: ${text.trim()}`,
      };
    }
    case "visits_unassigned": {
      const text = zh
        ? `${m.workerName}已被暂停，其 ${m.visits} 次尚未开始的上门服务需要重新安排护理员。`
        : `${m.workerName} was suspended: ${m.visits} visit${m.visits === 1 ? "" : "s"} not yet started need${m.visits === 1 ? "s" : ""} another worker.`;
      return {
        title: zh ? "需要重新安排" : "Visits need a worker",
        body: text,
        sms: `kincare: ${text}`,
      };
    }
    case "worker_invite": {
      const text = zh
        ? `${m.providerName}已在 kincare 登记您为护理员。回复任意内容即可接收上门服务提醒和紧急短信。`
        : `${m.providerName} registered you as a care worker on kincare. Reply to this text (any word) to receive visit reminders and urgent alerts.`;
      return { title: "kincare", body: text, sms: `kincare: ${text}` };
    }
    case "phone_invite": {
      const text = zh
        ? `${m.byName}将您列为${m.residentName}的紧急联系人。回复任意内容即可接收 kincare 的警报短信。`
        : `${m.byName} listed you as an emergency contact for ${m.residentName}. Reply to this text (any word) to receive kincare alerts.`;
      return { title: "kincare", body: text, sms: `kincare: ${text}` };
    }
  }
}
