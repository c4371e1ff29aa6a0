// Who an alert's chain has reached so far (a message sent or in flight), and by which channels:
// the people told when someone takes charge, or when the resident cancels the SOS.
import type { AlertRow } from "../alerts/alerts.table";
import type { Executor } from "../db/database";
import type { Channel } from "../notifications/notifications.table";
import { type Person, personForPhone, personForUser } from "../notifications/queue";

export type Audience = Map<string, { person: Person; channels: Set<Channel> }>;

export function addTo(audience: Audience, person: Person | null, channel: Channel) {
  if (!person) return;
  const entry = audience.get(person.key) ?? { person, channels: new Set<Channel>() };
  entry.channels.add(channel);
  audience.set(person.key, entry);
}

export async function peopleReached(db: Executor, alert: AlertRow): Promise<Audience> {
  const reached = await db
    .selectFrom("deliveries")
    .select(["user_id", "phone", "recipient_name", "channel"])
    .where("alert_id", "=", alert.id)
    .where("purpose", "=", "alert_step")
    .where("status", "in", ["sent", "queued", "delivered", "sending"])
    .execute();
  const audience: Audience = new Map();
  if (reached.length === 0) return audience;
  const resident = await db
    .selectFrom("residents")
    .select(["language", "time_zone"])
    .where("id", "=", alert.resident_id)
    .executeTakeFirstOrThrow();
  for (const r of reached) {
    const person = r.user_id
      ? await personForUser(db, r.user_id)
      : await personForPhone(db, r.phone!, r.recipient_name ?? r.phone!, {
          language: resident.language,
          timeZone: resident.time_zone,
        });
    addTo(audience, person, r.channel);
  }
  return audience;
}
