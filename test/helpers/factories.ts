// Typed builders for test data, through the real API wherever one exists.
import { ensureOperator } from "../../src/accounts/accounts.service";
import type { TestApp } from "./test-app";

let counter = 0;
export const unique = (prefix: string) => `${prefix}${process.pid}x${++counter}`;
export const PASSWORD = "correct horse battery staple";

export interface SignedIn {
  id: string;
  token: string;
  email: string;
}

export async function signUpFamily(
  t: TestApp,
  overrides: { displayName?: string; email?: string; phone?: string; password?: string } = {},
): Promise<SignedIn> {
  const email = overrides.email ?? `${unique("family")}@example.com`;
  const res = await t.request("POST", "/v1/auth/signup", {
    body: {
      displayName: overrides.displayName ?? "Family Member",
      email,
      ...(overrides.phone ? { phone: overrides.phone } : {}),
      password: overrides.password ?? PASSWORD,
    },
  });
  if (res.status !== 201)
    throw new Error(`sign-up failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.user.id, token: res.body.session.token, email };
}

export async function login(t: TestApp, loginName: string, password = PASSWORD): Promise<SignedIn> {
  const res = await t.request("POST", "/v1/auth/login", { body: { login: loginName, password } });
  if (res.status !== 200)
    throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.user.id, token: res.body.session.token, email: loginName };
}

export async function createOperator(t: TestApp): Promise<SignedIn> {
  const email = `${unique("operator")}@example.com`;
  await ensureOperator(t.db, t.clock.now(), {
    email,
    password: PASSWORD,
    displayName: "Night Desk",
  });
  return login(t, email);
}

/** An account with the given roles, created by an operator through the API. */
export async function createUserWithRoles(
  t: TestApp,
  operatorToken: string,
  roles: string[],
): Promise<SignedIn> {
  const email = `${unique(roles.join("-"))}@example.com`;
  const res = await t.request("POST", "/v1/users", {
    token: operatorToken,
    body: { displayName: `User ${roles.join("+")}`, email, password: PASSWORD, roles },
  });
  if (res.status !== 201)
    throw new Error(`user creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return login(t, email);
}
