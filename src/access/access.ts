// Authorisation by role and by relationship: who may do what to which resident.
// Someone with no relationship to a resident gets a 404, so existence does not leak;
// someone related but not allowed gets a 403 that says why.
import type { Executor } from "../db/database";
import { AppError, notFound } from "../errors";
import type { Actor } from "../http/context";
import type { ResidentRow } from "../residents/residents.table";

/** "booker": a member the primaries allowed to book services. */
export type Relation = "operator" | "primary" | "member" | "booker" | "self";

export const residentActions = {
  view: ["operator", "primary", "member", "self"],
  update: ["operator", "primary"],
  readHealth: ["operator", "primary", "member", "self"],
  writeHealth: ["operator", "primary"],
  readAccessNotes: ["operator", "primary", "self"],
  writeAccessNotes: ["operator", "primary"],
  changeStatus: ["operator", "primary"],
  archive: ["operator"],
  confirm: ["operator"],
  viewCircle: ["operator", "primary", "member", "self"],
  manageCircle: ["operator", "primary"],
  readCarePlan: ["operator", "primary", "member", "self"],
  writeCarePlan: ["operator", "primary"],
  viewDevices: ["operator", "primary", "member", "self"],
  manageDevices: ["operator", "primary"],
  readVitals: ["operator", "primary", "member", "self"],
  viewAlerts: ["operator", "primary", "member", "self"],
  handleAlerts: ["operator", "primary", "member"],
  manageEscalation: ["operator", "primary"],
  viewWallet: ["operator", "primary", "member", "self"],
  payIntoWallet: ["primary", "member"],
  book: ["operator", "primary", "booker"],
  rateVisits: ["primary", "member"],
  confirmPresence: ["primary", "member", "self"],
} as const satisfies Record<string, readonly Relation[]>;

export type ResidentAction = keyof typeof residentActions;

const describe: Record<ResidentAction, string> = {
  view: "see this resident",
  update: "change this resident's profile",
  readHealth: "read this resident's health notes",
  writeHealth: "change this resident's health notes",
  readAccessNotes: "read this resident's access notes",
  writeAccessNotes: "change this resident's access notes",
  changeStatus: "pause or resume this resident",
  archive: "archive a resident",
  confirm: "confirm a resident's registration",
  viewCircle: "see this resident's family circle",
  manageCircle: "manage this resident's family circle",
  readCarePlan: "read this resident's care plan",
  writeCarePlan: "change this resident's care plan",
  viewDevices: "see this resident's devices",
  manageDevices: "register, rotate, revoke or move this resident's devices",
  readVitals: "read this resident's vital signs",
  viewAlerts: "see this resident's alerts",
  handleAlerts: "acknowledge or resolve this resident's alerts",
  manageEscalation: "change who is called when this resident needs help",
  viewWallet: "see this resident's wallet",
  payIntoWallet: "put money into or take it out of this resident's wallet",
  book: "book, cancel or review services for this resident",
  rateVisits: "rate the visits to this resident",
  confirmPresence: "confirm that a care worker is at this resident's home",
};

/** Every relationship the actor has to the resident (several: an operator may also be family). */
export async function relationsTo(
  db: Executor,
  actor: Actor,
  resident: ResidentRow,
): Promise<Relation[]> {
  const relations: Relation[] = [];
  if (actor.roles.includes("operator")) relations.push("operator");
  if (actor.roles.includes("resident") && resident.user_id === actor.userId) relations.push("self");
  if (actor.roles.includes("family")) {
    const membership = await db
      .selectFrom("circle_members")
      .select(["level", "can_book"])
      .where("resident_id", "=", resident.id)
      .where("user_id", "=", actor.userId)
      .executeTakeFirst();
    if (membership) relations.push(membership.level);
    if (membership?.level === "member" && membership.can_book) relations.push("booker");
  }
  return relations;
}

export interface ResidentAccess {
  resident: ResidentRow;
  relations: Relation[];
}

export async function authorizeResident(
  db: Executor,
  actor: Actor,
  residentId: string,
  action: ResidentAction,
): Promise<ResidentAccess> {
  const resident = await db
    .selectFrom("residents")
    .selectAll()
    .where("id", "=", residentId)
    .executeTakeFirst();
  if (!resident) throw notFound("the resident");
  const relations = await relationsTo(db, actor, resident);
  if (relations.length === 0) throw notFound("the resident");
  const allowed: readonly Relation[] = residentActions[action];
  if (!relations.some((r) => allowed.includes(r))) {
    throw new AppError(
      "forbidden",
      `as ${relations.join(" and ")} you may not ${describe[action]}`,
    );
  }
  return { resident, relations };
}

export function can(access: ResidentAccess, action: ResidentAction): boolean {
  const allowed: readonly Relation[] = residentActions[action];
  return access.relations.some((r) => allowed.includes(r));
}

/** The strongest relationship, for pages that adapt to it. */
export function mainRelation(relations: Relation[]): Exclude<Relation, "booker"> | null {
  for (const r of ["operator", "primary", "member", "self"] as const)
    if (relations.includes(r)) return r;
  return null;
}
