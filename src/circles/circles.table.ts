import type { Generated, Selectable } from "kysely";

export const circleLevels = ["primary", "member"] as const;
export type CircleLevel = (typeof circleLevels)[number];

export interface CircleMembersTable {
  resident_id: string;
  user_id: string;
  relationship: string;
  level: CircleLevel;
  /** 1: a member the primaries let book and cancel services (primaries always may). */
  can_book: Generated<number>;
  added_by: string | null;
  created_at: string;
}

export interface InvitationsTable {
  id: string;
  resident_id: string;
  token_hash: string;
  invited_by: string;
  email: string | null;
  phone: string | null;
  relationship: string;
  level: CircleLevel;
  created_at: string;
  expires_at: string;
  accepted_at: string | null;
  accepted_by: string | null;
  revoked_at: string | null;
}

export type CircleMemberRow = Selectable<CircleMembersTable>;
export type InvitationRow = Selectable<InvitationsTable>;
