// One error type with a closed set of codes. Every error body is
// { "error": { "code", "message", "details"?, "requestId" } }.
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const errorCodes = [
  "bad_request",
  "malformed_json",
  "validation_failed",
  "unsupported_media_type",
  "payload_too_large",
  "unauthenticated",
  "invalid_credentials",
  "account_locked",
  "too_many_attempts",
  "origin_rejected",
  "forbidden",
  "not_found",
  "conflict",
  "already_exists",
  "version_conflict",
  "invitation_expired",
  "invitation_used",
  "invitation_wrong_recipient",
  "reset_token_invalid",
  "last_primary",
  "invalid_state",
  "insufficient_funds",
  "idempotency_key_required",
  "idempotency_key_reused",
  "signature_invalid",
  "assignment_refused",
  "outcomes_required",
  "reason_required",
  "code_invalid",
  "internal",
  "unavailable",
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export function statusOf(code: ErrorCode): ContentfulStatusCode {
  switch (code) {
    case "bad_request":
    case "malformed_json":
    case "validation_failed":
      return 400;
    case "unauthenticated":
    case "invalid_credentials":
      return 401;
    case "origin_rejected":
    case "signature_invalid":
    case "forbidden":
    case "invitation_wrong_recipient":
      return 403;
    case "not_found":
      return 404;
    case "conflict":
    case "already_exists":
    case "version_conflict":
    case "last_primary":
    case "invalid_state":
    case "insufficient_funds":
    case "assignment_refused":
      return 409;
    case "invitation_expired":
    case "invitation_used":
    case "reset_token_invalid":
      return 410;
    case "payload_too_large":
      return 413;
    case "unsupported_media_type":
      return 415;
    case "idempotency_key_reused":
    case "outcomes_required":
    case "reason_required":
    case "code_invalid":
      return 422;
    case "idempotency_key_required":
      return 428;
    case "account_locked":
    case "too_many_attempts":
      return 429;
    case "internal":
      return 500;
    case "unavailable":
      return 503;
  }
}

export interface FieldIssue {
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown> | { issues: FieldIssue[] },
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "AppError";
    this.status = statusOf(code);
  }
}

export const notFound = (what: string) => new AppError("not_found", `${what} was not found`);
export const forbidden = (why: string) => new AppError("forbidden", why);
export const unauthenticated = () =>
  new AppError("unauthenticated", "sign in first: send a session token or cookie");
