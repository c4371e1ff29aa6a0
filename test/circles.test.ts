import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOperator, type SignedIn, signUpFamily } from "./helpers/factories";
import { createResident, joinCircle } from "./helpers/residents.factory";
import { createTestApp, type TestApp } from "./helpers/test-app";

let t: TestApp;
let operator: SignedIn;

beforeAll(async () => {
  t = await createTestApp();
  operator = await createOperator(t);
});
afterAll(() => t.close());

async function familyWithMother() {
  const daughter = await signUpFamily(t, { displayName: "Li Mei" });
  const mother = await createResident(t, daughter.token, { relationship: "daughter" });
  return { daughter, mother };
}

async function invite(token: string, residentId: string, body: Record<string, unknown>) {
  return t.request("POST", `/v1/residents/${residentId}/invitations`, {
    token,
    body: { relationship: "son", ...body },
  });
}

describe("invitations", () => {
  it("a primary invites her brother by email; he accepts with his account and joins as a member", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t, { displayName: "Li Lei" });
    const inv = await invite(daughter.token, mother.id, { email: brother.email.toUpperCase() });
    expect(inv.status).toBe(201);
    expect(inv.body.link).toBe(
      `http://kincare.test/invitations/accept?token=${encodeURIComponent(inv.body.token)}`,
    );
    expect(inv.body.invitation).toMatchObject({
      status: "pending",
      level: "member",
      email: brother.email,
    });

    const preview = await t.request("POST", "/v1/invitations/preview", {
      body: { token: inv.body.token },
    });
    expect(preview.body).toMatchObject({
      residentName: "Grandma Wang",
      invitedBy: "Li Mei",
      status: "pending",
    });

    const accepted = await t.request("POST", "/v1/invitations/accept", {
      token: brother.token,
      body: { token: inv.body.token },
    });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toEqual({ residentId: mother.id, level: "member", relationship: "son" });

    const circle = await t.request("GET", `/v1/residents/${mother.id}/circle`, {
      token: brother.token,
    });
    expect(
      circle.body.items.map((m: { userId: string; level: string }) => [m.userId, m.level]),
    ).toEqual([
      [daughter.id, "primary"],
      [brother.id, "member"],
    ]);
    const listed = await t.request("GET", `/v1/residents/${mother.id}/invitations`, {
      token: daughter.token,
    });
    expect(listed.body.items[0].status).toBe("accepted");
    // The token is never stored or listed in the clear.
    expect(JSON.stringify(listed.body)).not.toContain(inv.body.token);
  });

  it("an invitation by phone is matched to the account with that phone number", async () => {
    const { daughter, mother } = await familyWithMother();
    const inv = await invite(daughter.token, mother.id, {
      phone: "+44 7911 123456",
      level: "primary",
    });
    expect(inv.body.invitation.phone).toBe("+447911123456");
    const nephew = await signUpFamily(t, { phone: "+447911123456" });
    const accepted = await t.request("POST", "/v1/invitations/accept", {
      token: nephew.token,
      body: { token: inv.body.token },
    });
    expect(accepted.body.level).toBe("primary");
  });

  it("a used invitation cannot be used again", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    const inv = await invite(daughter.token, mother.id, { email: brother.email });
    await t.request("POST", "/v1/invitations/accept", {
      token: brother.token,
      body: { token: inv.body.token },
    });
    const again = await t.request("POST", "/v1/invitations/accept", {
      token: brother.token,
      body: { token: inv.body.token },
    });
    expect(again.status).toBe(410);
    expect(again.body.error.code).toBe("invitation_used");
  });

  it("an expired invitation is refused", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    const inv = await invite(daughter.token, mother.id, { email: brother.email });
    t.clock.advance(73 * 3_600_000); // invitations.ttl_hours defaults to 72
    try {
      const res = await t.request("POST", "/v1/invitations/accept", {
        token: brother.token,
        body: { token: inv.body.token },
      });
      expect(res.status).toBe(410);
      expect(res.body.error.code).toBe("invitation_expired");
      const preview = await t.request("POST", "/v1/invitations/preview", {
        body: { token: inv.body.token },
      });
      expect(preview.body.status).toBe("expired");
    } finally {
      t.clock.advance(-73 * 3_600_000);
    }
  });

  it("an invitation for someone else is refused, and stays usable by its recipient", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    const stranger = await signUpFamily(t);
    const inv = await invite(daughter.token, mother.id, { email: brother.email });
    const wrong = await t.request("POST", "/v1/invitations/accept", {
      token: stranger.token,
      body: { token: inv.body.token },
    });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe("invitation_wrong_recipient");
    expect(
      (await t.request("GET", `/v1/residents/${mother.id}`, { token: stranger.token })).status,
    ).toBe(404);
    const right = await t.request("POST", "/v1/invitations/accept", {
      token: brother.token,
      body: { token: inv.body.token },
    });
    expect(right.status).toBe(200);
  });

  it("a withdrawn invitation is refused", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    const inv = await invite(daughter.token, mother.id, { email: brother.email });
    const del = await t.request(
      "DELETE",
      `/v1/residents/${mother.id}/invitations/${inv.body.invitation.id}`,
      { token: daughter.token },
    );
    expect(del.status).toBe(204);
    const res = await t.request("POST", "/v1/invitations/accept", {
      token: brother.token,
      body: { token: inv.body.token },
    });
    expect(res.body.error.code).toBe("invitation_expired");
  });

  it("an unknown token is a 404, and accepting needs a signed-in account", async () => {
    const brother = await signUpFamily(t);
    const res = await t.request("POST", "/v1/invitations/accept", {
      token: brother.token,
      body: { token: "not-a-real-token-at-all" },
    });
    expect(res.status).toBe(404);
    const anonymous = await t.request("POST", "/v1/invitations/accept", {
      body: { token: "not-a-real-token-at-all" },
    });
    expect(anonymous.status).toBe(401);
  });

  it("a member cannot invite, and an invitation must name an email or phone", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    await joinCircle(t, daughter.token, mother.id, brother);
    const byMember = await invite(brother.token, mother.id, { email: "cousin@example.com" });
    expect(byMember.status).toBe(403);
    const nobody = await invite(daughter.token, mother.id, {});
    expect(nobody.status).toBe(400);
    expect(nobody.body.error.details.issues[0].path).toBe("email");
  });
});

describe("circle membership", () => {
  it("the only primary cannot leave or step down; with a second primary she can", async () => {
    const { daughter, mother } = await familyWithMother();
    const leave = await t.request("DELETE", `/v1/residents/${mother.id}/circle/${daughter.id}`, {
      token: daughter.token,
    });
    expect(leave.status).toBe(409);
    expect(leave.body.error.code).toBe("last_primary");
    const stepDown = await t.request("PATCH", `/v1/residents/${mother.id}/circle/${daughter.id}`, {
      token: daughter.token,
      body: { level: "member" },
    });
    expect(stepDown.body.error.code).toBe("last_primary");

    const brother = await signUpFamily(t);
    await joinCircle(t, daughter.token, mother.id, brother, "primary");
    const left = await t.request("DELETE", `/v1/residents/${mother.id}/circle/${daughter.id}`, {
      token: daughter.token,
    });
    expect(left.status).toBe(204);
    expect(
      (await t.request("GET", `/v1/residents/${mother.id}`, { token: daughter.token })).status,
    ).toBe(404);
  });

  it("an operator may remove the last primary; the operators then own the resident", async () => {
    const { daughter, mother } = await familyWithMother();
    const res = await t.request("DELETE", `/v1/residents/${mother.id}/circle/${daughter.id}`, {
      token: operator.token,
    });
    expect(res.status).toBe(204);
    expect(
      (await t.request("GET", `/v1/residents/${mother.id}/circle`, { token: operator.token })).body
        .items,
    ).toEqual([]);
  });

  it("a primary removes a member; a member may leave but not remove others", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    const cousin = await signUpFamily(t);
    await joinCircle(t, daughter.token, mother.id, brother);
    await joinCircle(t, daughter.token, mother.id, cousin, "member", "nephew");
    const denied = await t.request("DELETE", `/v1/residents/${mother.id}/circle/${cousin.id}`, {
      token: brother.token,
    });
    expect(denied.status).toBe(403);
    expect(
      (
        await t.request("DELETE", `/v1/residents/${mother.id}/circle/${cousin.id}`, {
          token: daughter.token,
        })
      ).status,
    ).toBe(204);
    expect(
      (
        await t.request("DELETE", `/v1/residents/${mother.id}/circle/${brother.id}`, {
          token: brother.token,
        })
      ).status,
    ).toBe(204);
    const circle = await t.request("GET", `/v1/residents/${mother.id}/circle`, {
      token: daughter.token,
    });
    expect(circle.body.items.map((m: { userId: string }) => m.userId)).toEqual([daughter.id]);
  });

  it("a primary promotes a member, and the change is audited", async () => {
    const { daughter, mother } = await familyWithMother();
    const brother = await signUpFamily(t);
    await joinCircle(t, daughter.token, mother.id, brother);
    const res = await t.request("PATCH", `/v1/residents/${mother.id}/circle/${brother.id}`, {
      token: daughter.token,
      body: { level: "primary" },
    });
    expect(res.body.items.find((m: { userId: string }) => m.userId === brother.id).level).toBe(
      "primary",
    );
    const audit = await t.request(
      "GET",
      `/v1/audit?residentId=${mother.id}&action=circle.member_change`,
      { token: operator.token },
    );
    expect(audit.body.items).toEqual([
      expect.objectContaining({ actorUserId: daughter.id, entityId: brother.id }),
    ]);
  });
});
