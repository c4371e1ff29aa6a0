import type { Actor } from "./http/context";

/** What a service needs to know about the request it serves: when, who, and which request. */
export interface RequestCtx {
  now: Date;
  actor: Actor | null;
  requestId: string | null;
}
