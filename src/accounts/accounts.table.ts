import type { Generated, Selectable } from "kysely";

export const roles = ["operator", "provider_admin", "worker", "family", "resident"] as const;
export type Role = (typeof roles)[number];

export interface UsersTable {
  id: string;
  email: string | null;
  phone: string | null;
  display_name: string;
  password_hash: string;
  language: string;
  time_zone: string;
  quiet_hours_start: string | null;
  quiet_hours_end: string | null;
  /** JSON array of channel names. */
  channels: string;
  failed_logins: Generated<number>;
  next_login_at: string | null;
  locked_until: string | null;
  disabled_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface UserRolesTable {
  user_id: string;
  role: Role;
  granted_at: string;
  granted_by: string | null;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  token_hash: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  revoked_at: string | null;
  user_agent: string | null;
  ip: string | null;
}

export interface PasswordResetsTable {
  id: string;
  user_id: string;
  token_hash: string;
  created_by: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
