// Every feature's sub-app comes from here, so validation failures everywhere answer alike.
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { ZodError } from "zod";
import { AppError, type FieldIssue } from "../errors";
import type { AppEnv } from "./context";

export function fieldIssues(error: ZodError, target?: string): FieldIssue[] {
  const where = (segments: PropertyKey[]) => {
    const path = segments.map(String).join(".");
    return target && target !== "json" ? `${target}${path ? `.${path}` : ""}` : path || "(body)";
  };
  // An unknown field is named by its own path, one issue each, like every other bad field.
  return error.issues.flatMap((issue) =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ path: where([...issue.path, key]), message: "unknown field" }))
      : [{ path: where(issue.path), message: issue.message }],
  );
}

export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const issues = fieldIssues(result.error as ZodError, result.target);
        const summary = issues
          .slice(0, 3)
          .map((i) => `${i.path}: ${i.message}`)
          .join("; ");
        throw new AppError("validation_failed", `the request is not valid: ${summary}`, { issues });
      }
    },
  });
}

export function jsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return {
    body: {
      required: true,
      content: { "application/json": { schema } },
      ...(description ? { description } : {}),
    },
  } as const;
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "validation_failed" }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
      requestId: z.string(),
    }),
  })
  .openapi("Error");

export const errorResponses = {
  400: jsonResponse(ErrorBody, "The request is malformed or not valid"),
  401: jsonResponse(ErrorBody, "Not signed in, or the session ended"),
  403: jsonResponse(ErrorBody, "Signed in, but not allowed"),
  404: jsonResponse(ErrorBody, "Not found, or not visible to you"),
  409: jsonResponse(ErrorBody, "Conflicts with the current state"),
} as const;

export const idParam = (name: string) =>
  z.object({ [name]: z.string().min(1).max(64) }) as z.ZodObject<Record<string, z.ZodString>>;

export { z };
