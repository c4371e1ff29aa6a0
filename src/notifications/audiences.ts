// Who hears about something: a resident's family circle, a provider's admins, a care worker.
import type { Executor } from "../db/database";
import { getSettings } from "../settings/settings.service";
import type { Channel } from "./notifications.table";
import { personForPhone, personForUser, queueMessage } from "./queue";
import type { Message } from "./templates";

export interface Notice {
  purpose: string;
  message: Message;
  /** Made unique per recipient by the queue: the same notice never goes out twice. */
  dedupeKey: string;
  channels: Channel[];
}

async function send(db: Executor, userIds: string[], notice: Notice, now: Date) {
  const settings = await getSettings(db);
  for (const userId of new Set(userIds)) {
    const person = await personForUser(db, userId);
    if (!person) continue;
    await queueMessage(db, person, { ...notice, requireConfirmedPhone: true }, now, settings);
  }
}

/** The family circle (primaries only, if asked) and the resident's own account. */
export async function tellFamily(
  db: Executor,
  residentId: string,
  notice: Notice,
  now: Date,
  opts: { primariesOnly?: boolean } = {},
) {
  let q = db.selectFrom("circle_members").select("user_id").where("resident_id", "=", residentId);
  if (opts.primariesOnly) q = q.where("level", "=", "primary");
  const ids = (await q.orderBy("created_at").execute()).map((r) => r.user_id);
  const self = await db
    .selectFrom("residents")
    .select("user_id")
    .where("id", "=", residentId)
    .executeTakeFirst();
  if (self?.user_id && !opts.primariesOnly) ids.push(self.user_id);
  await send(db, ids, notice, now);
}

export async function tellProvider(db: Executor, providerId: string, notice: Notice, now: Date) {
  const admins = await db
    .selectFrom("provider_admins")
    .select("user_id")
    .where("provider_id", "=", providerId)
    .execute();
  await send(
    db,
    admins.map((a) => a.user_id),
    notice,
    now,
  );
}

/** The worker's own account, or their registered phone when they have none. */
export async function tellWorker(
  db: Executor,
  workerId: string,
  notice: Notice,
  now: Date,
  /** The language and time zone to use for a phone with no account (the resident's). */
  fallback: { language: string; timeZone: string },
) {
  const worker = await db
    .selectFrom("workers")
    .select(["user_id", "phone", "legal_name"])
    .where("id", "=", workerId)
    .executeTakeFirst();
  if (!worker) return;
  if (worker.user_id) return send(db, [worker.user_id], notice, now);
  const settings = await getSettings(db);
  const person = await personForPhone(db, worker.phone, worker.legal_name, fallback);
  await queueMessage(db, person, { ...notice, requireConfirmedPhone: false }, now, settings);
}
