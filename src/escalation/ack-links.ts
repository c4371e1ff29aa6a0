// The link in a push notification or a text: it opens a page that shows the alert; only the
// page's button (a POST carrying the same signed, expiring token) acknowledges it, so a link
// preview fetching the page can never silence an SOS.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Executor } from "../db/database";
import { instanceKey } from "../db/instance-keys";

export interface AckClaim {
  alertId: string;
  /** The user the link was sent to, or the bare phone number. */
  userId: string | null;
  phone: string | null;
  /** Expiry, epoch milliseconds. */
  exp: number;
}

export interface AckLinks {
  url(claim: Omit<AckClaim, "exp">, now: Date): string;
  verify(token: string, now: Date): AckClaim | null;
}

const TTL_MS = 24 * 3_600_000;

export async function loadAckLinks(db: Executor, publicUrl: string): Promise<AckLinks> {
  const key = Buffer.from(
    await instanceKey(db, "alert_ack_links", () => randomBytes(32).toString("hex")),
    "hex",
  );
  const mac = (body: string) => createHmac("sha256", key).update(body).digest("base64url");
  return {
    url(claim, now) {
      const body = Buffer.from(
        JSON.stringify({
          a: claim.alertId,
          u: claim.userId,
          p: claim.phone,
          e: now.getTime() + TTL_MS,
        }),
      ).toString("base64url");
      return `${publicUrl}/a/${body}.${mac(body)}`;
    },
    verify(token, now) {
      const [body, sig] = token.split(".");
      if (!body || !sig) return null;
      const expected = Buffer.from(mac(body));
      const given = Buffer.from(sig);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
      try {
        const c = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as {
          a: string;
          u: string | null;
          p: string | null;
          e: number;
        };
        if (typeof c.a !== "string" || typeof c.e !== "number" || c.e < now.getTime()) return null;
        return { alertId: c.a, userId: c.u ?? null, phone: c.p ?? null, exp: c.e };
      } catch {
        return null;
      }
    },
  };
}
