// A verified provider with one service and an admin who can sign in, written straight to the
// database (the provider and catalog API have their own tests); and money in a wallet.
import { newId } from "../../src/ids";
import { createUserWithRoles, type SignedIn } from "./factories";
import type { TestApp } from "./test-app";

export interface Provider {
  id: string;
  admin: SignedIn;
  serviceId: string;
}

export async function verifiedProvider(
  t: TestApp,
  operatorToken: string,
  service: {
    priceMinor?: number;
    unit?: string;
    durationMinutes?: number;
    minNoticeHours?: number;
  } = {},
): Promise<Provider> {
  const admin = await createUserWithRoles(t, operatorToken, ["provider_admin"]);
  const now = t.clock.now().toISOString();
  const id = newId();
  await t.db
    .insertInto("providers")
    .values({
      id,
      legal_name: "Sunrise Home Care Ltd",
      display_name: "Sunrise Home Care",
      licence_number: `LIC-${id.slice(-12)}`,
      categories: JSON.stringify(["personal_care"]),
      centre_latitude: null,
      centre_longitude: null,
      radius_km: null,
      contact_email: "desk@sunrise.example",
      contact_phone: "+8613900000001",
      on_call_name: "Zhang Min",
      on_call_phone: "+8613900000002",
      status: "verified",
      status_reason: null,
      status_changed_at: now,
      status_changed_by: null,
      rating_sum: 0,
      rating_count: 0,
      no_show_count: 0,
      created_by: admin.id,
      created_at: now,
      updated_at: now,
    } as never)
    .execute();
  // It serves the default resident's district (test/helpers/residents.factory.ts).
  await t.db
    .insertInto("provider_localities")
    .values({ locality_key: "changning", provider_id: id, locality: "Changning" } as never)
    .execute();
  await t.db
    .insertInto("provider_admins")
    .values({ provider_id: id, user_id: admin.id, added_by: null, created_at: now } as never)
    .execute();
  const serviceId = newId();
  await t.db
    .insertInto("services")
    .values({
      id: serviceId,
      provider_id: id,
      search_rowid: null,
      title: "Morning personal care",
      category: "personal_care",
      description: "Help with washing, dressing and breakfast",
      price_minor: service.priceMinor ?? 12_000,
      currency: "CNY",
      unit: service.unit ?? "per_visit",
      duration_minutes: service.durationMinutes ?? 60,
      min_notice_hours: service.minNoticeHours ?? 12,
      availability: JSON.stringify([]),
      active: 1,
      created_by: admin.id,
      created_at: now,
      updated_at: now,
    } as never)
    .execute();
  return { id, admin, serviceId };
}

let keys = 0;
export const idemKey = () =>
  `k-${process.pid}-${++keys}-${Math.random().toString(36).slice(2, 10)}`;

/** Money into a resident's wallet, recorded by an operator as a bank transfer from `payerId`. */
export async function fund(
  t: TestApp,
  operatorToken: string,
  residentId: string,
  payerId: string,
  amount: number,
) {
  const res = await t.request("POST", `/v1/residents/${residentId}/wallet/top-ups`, {
    token: operatorToken,
    headers: { "idempotency-key": idemKey() },
    body: { payerUserId: payerId, amount, method: "bank_transfer" },
  });
  if (res.status !== 201)
    throw new Error(`top-up failed: ${res.status} ${JSON.stringify(res.body)}`);
}
