// Telling a family, days ahead, that the wallet will not cover the next visit of a series.
import type { Executor } from "../db/database";
import { formatMoney } from "../ledger/ledger";
import { personForUser, queueMessage } from "../notifications/queue";
import { getSettings } from "../settings/settings.service";
import { localParts } from "../time";
import type { BookingRow } from "./bookings.table";

/** Every primary of the circle hears it, at most once a day per series. */
export async function tellWalletShort(
  db: Executor,
  booking: BookingRow,
  needed: number,
  now: Date,
) {
  const resident = await db
    .selectFrom("residents")
    .select(["full_name", "preferred_name"])
    .where("id", "=", booking.resident_id)
    .executeTakeFirstOrThrow();
  const primaries = await db
    .selectFrom("circle_members")
    .select("user_id")
    .where("resident_id", "=", booking.resident_id)
    .where("level", "=", "primary")
    .execute();
  const settings = await getSettings(db);
  const today = localParts(now, booking.time_zone).date;
  for (const p of primaries) {
    const person = await personForUser(db, p.user_id);
    if (!person) continue;
    await queueMessage(
      db,
      person,
      {
        purpose: "wallet_short",
        message: {
          t: "wallet_short",
          residentName: resident.preferred_name ?? resident.full_name,
          needed: formatMoney(needed, booking.currency),
          visitDate: booking.generated_through ?? today,
        },
        channels: ["push", "sms"],
        dedupeKey: `wallet-short:${booking.id}:${today}`,
        requireConfirmedPhone: true,
      },
      now,
      settings,
    );
  }
}
