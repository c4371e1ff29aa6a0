// The whole environment, checked once at start by one schema. A bad value stops the start
// with a message naming the variable; later issues add their variables here.
import { z } from "zod";

const port = z.coerce.number().int().min(0).max(65535);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

const envSchema = z
  .object({
    NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
    HOST: z.string().min(1).default("0.0.0.0"),
    PORT: port.default(3000),
    DATABASE_URL: z
      .string()
      .min(1)
      .default("./data/kincare.db")
      .refine((v) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(v) || /^postgres(ql)?:\/\//i.test(v), {
        message: "use a file path, a sqlite: URL, or a postgres:// URL",
      }),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
    LOG_LEVEL: z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
      .default("info"),
    PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
    BOOTSTRAP_OPERATOR_EMAIL: optionalString.pipe(z.email().optional()),
    BOOTSTRAP_OPERATOR_PASSWORD: optionalString.pipe(
      z.string().min(12, "must be at least 12 characters").optional(),
    ),
    MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
    JOBS_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(500),
    JOBS_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(8),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
    MQTT_URL: optionalString.pipe(
      z.url({ protocol: /^(mqtts?|tcp|ssl)$/, message: "an mqtt:// or mqtts:// URL" }).optional(),
    ),
    MQTT_USERNAME: optionalString,
    MQTT_PASSWORD: optionalString,
    MQTT_CLIENT_ID: z
      .string()
      .regex(/^[\w.-]{1,48}$/, "letters, digits, '.', '-' and '_' (at most 48)")
      .default("kincare"),
    MQTT_SHARED_GROUP: optionalString.pipe(
      z
        .string()
        .regex(/^[\w-]{1,64}$/, "letters, digits, '-' and '_'")
        .optional(),
    ),
    MQTT_INGEST_CONNECTIONS: z.coerce.number().int().min(1).max(256).default(16),
    MQTT_HOST: z.string().min(1).default("0.0.0.0"),
    MQTT_PORT: port.default(1883),
    MQTT_PUBLIC_URL: optionalString.pipe(
      z.url({ protocol: /^(mqtts?|tcp|ssl)$/, message: "an mqtt:// or mqtts:// URL" }).optional(),
    ),
    MQTT_TOPIC_PREFIX: z
      .string()
      .regex(/^[\w-]+(\/[\w-]+)*$/, "topic levels of letters, digits, '-' and '_', e.g. kincare/v1")
      .default("kincare/v1"),
    TWILIO_ACCOUNT_SID: optionalString.pipe(
      z
        .string()
        .regex(/^AC[0-9a-fA-F]{32}$/, "an account SID: AC followed by 32 hex digits")
        .optional(),
    ),
    TWILIO_AUTH_TOKEN: optionalString,
    TWILIO_FROM: optionalString.pipe(
      z
        .string()
        .regex(
          /^(\+[1-9]\d{6,14}|MG[0-9a-fA-F]{32})$/,
          "a number in E.164 (+...) or a Messaging Service SID (MG...)",
        )
        .optional(),
    ),
    TWILIO_API_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
    PAYMENTS_WEBHOOK_SECRET: optionalString.pipe(
      z.string().min(16, "must be at least 16 characters").optional(),
    ),
    VAPID_PUBLIC_KEY: optionalString,
    VAPID_PRIVATE_KEY: optionalString,
    VAPID_SUBJECT: optionalString.pipe(
      z
        .string()
        .regex(/^(mailto:|https:\/\/)/, "a mailto: address or an https:// URL")
        .optional(),
    ),
  })
  .superRefine((env, ctx) => {
    const twilio = [env.TWILIO_ACCOUNT_SID, env.TWILIO_AUTH_TOKEN, env.TWILIO_FROM];
    if (twilio.some((v) => v !== undefined) && twilio.some((v) => v === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["TWILIO_ACCOUNT_SID"],
        message:
          "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM go together: set all three or none",
      });
    }
    if ((env.VAPID_PUBLIC_KEY === undefined) !== (env.VAPID_PRIVATE_KEY === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["VAPID_PRIVATE_KEY"],
        message: "VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY go together: set both or neither",
      });
    }
    if (
      (env.BOOTSTRAP_OPERATOR_EMAIL === undefined) !==
      (env.BOOTSTRAP_OPERATOR_PASSWORD === undefined)
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["BOOTSTRAP_OPERATOR_PASSWORD"],
        message:
          "BOOTSTRAP_OPERATOR_EMAIL and BOOTSTRAP_OPERATOR_PASSWORD go together: set both or neither",
      });
    }
  });

export type Config = Readonly<
  Omit<z.infer<typeof envSchema>, "PUBLIC_URL"> & {
    PUBLIC_URL: string;
    database: DatabaseTarget;
  }
>;

export type DatabaseTarget =
  | { dialect: "sqlite"; file: string }
  | { dialect: "postgres"; url: string };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `kincare cannot start, the configuration is wrong:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: "postgres", url };
  const file = url.replace(/^sqlite:(\/\/)?/i, "");
  return { dialect: "sqlite", file: file === "" ? ":memory:" : file };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (issue) => `${issue.path.join(".") || "environment"}: ${issue.message}`,
      ),
    );
  }
  const value = parsed.data;
  return Object.freeze({
    ...value,
    PUBLIC_URL: (value.PUBLIC_URL ?? `http://localhost:${value.PORT}`).replace(/\/+$/, ""),
    database: parseDatabaseUrl(value.DATABASE_URL),
  });
}
