import type { Role } from "../accounts/accounts.table";
import type { Clock } from "../clock";
import type { Config } from "../config";
import type { Db } from "../db/database";
import type { DeviceLink } from "../devices/link";
import type { AckLinks } from "../escalation/ack-links";
import type { AckEffects } from "../escalation/acknowledge";
import type { Scheduler } from "../jobs/scheduler";
import type { Logger } from "../logger";
import type { PushChannel, SmsChannel } from "../notifications/channels";

/** Everything the app reaches outside itself, passed in by the composition root (or a test). */
export interface AppDeps {
  config: Config;
  db: Db;
  dialect: "sqlite" | "postgres";
  logger: Logger;
  clock: Clock;
  scheduler: Scheduler;
  devices: DeviceLink;
  alerting: Alerting;
}

/** The ways out to people, and what an acknowledgement sets off. */
export interface Alerting {
  sms: SmsChannel;
  push: PushChannel;
  links: AckLinks;
  ack: AckEffects;
  /** Aborted at shutdown: long-lived event streams end so in-flight requests can finish. */
  streams: AbortSignal;
}

export interface Actor {
  userId: string;
  sessionId: string;
  displayName: string;
  roles: Role[];
}

export type AppEnv = {
  Variables: {
    requestId: string;
    logger: Logger;
    actor: Actor | null;
    authVia: "bearer" | "cookie" | null;
  };
};

export function hasRole(actor: Actor, role: Role): boolean {
  return actor.roles.includes(role);
}
