import { pino } from "pino";

export type Logger = pino.Logger;

// Secrets and health text never reach the logs: request bodies are not logged at all, and
// these paths are censored wherever a caller passes an object by mistake.
const redactPaths = [
  "password",
  "newPassword",
  "token",
  "secret",
  "authorization",
  "cookie",
  "*.password",
  "*.newPassword",
  "*.token",
  "*.secret",
  "*.authorization",
  "*.cookie",
  "*.medicalNotes",
  "*.accessNotes",
  "*.allergies",
  "req.headers.authorization",
  "req.headers.cookie",
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "kincare" },
      redact: { paths: redactPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
