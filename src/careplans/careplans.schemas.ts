// The care plan: goals, tasks, medications, vital-sign rules, check-in and night windows, and the
// emergency contacts that escalation starts from. Versioned: every change is a new version.
import { z } from "@hono/zod-openapi";
import { LocalTime, Phone } from "../validation";

export const weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

const TaskSchedule = z
  .discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("daily"), times: z.array(LocalTime).min(1).max(12) }),
    z.strictObject({
      kind: z.literal("weekly"),
      days: z.array(z.enum(weekdays)).min(1).max(7),
      times: z.array(LocalTime).max(12).default([]),
    }),
    z.strictObject({ kind: z.literal("every_visit") }),
  ])
  .openapi("TaskSchedule", {
    description:
      "daily at local times; on some weekdays (optionally at local times); or at every visit",
  });

const Id = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[\w-]+$/, { message: "letters, digits, - and _ only" });

export const TaskSchema = z
  .strictObject({
    id: Id,
    title: z.string().trim().min(1).max(200),
    instructions: z.string().max(2_000).nullable().default(null),
    schedule: TaskSchedule,
  })
  .openapi("CareTask");

export const MedicationSchema = z
  .strictObject({
    id: Id,
    name: z.string().trim().min(1).max(200),
    dose: z.string().trim().min(1).max(200).openapi({ example: "5 mg tablet" }),
    times: z.array(LocalTime).min(1).max(12),
    instructions: z.string().max(2_000).nullable().default(null),
  })
  .openapi("Medication");

const Bounds = z.strictObject({ min: z.number().nullable(), max: z.number().nullable() });

export const VitalRuleSchema = z
  .strictObject({
    enabled: z.boolean(),
    unit: z.string().min(1).max(20),
    normal: Bounds.openapi({ description: "Outside this range is a warning" }),
    critical: Bounds.openapi({ description: "Outside this range is critical" }),
    consecutive: z
      .number()
      .int()
      .min(1)
      .max(20)
      .openapi({ description: "Readings in a row outside the range before an alert" }),
    minutes: z.number().int().min(1).max(1_440).nullable().openapi({
      description:
        "Or: minutes continuously outside the range before an alert (null: count readings only)",
    }),
    hysteresis: z
      .number()
      .min(0)
      .openapi({ description: "How far back inside the range a reading must come to clear" }),
  })
  .superRefine((rule, ctx) => {
    const { normal, critical } = rule;
    if (normal.min !== null && normal.max !== null && normal.min >= normal.max) {
      ctx.addIssue({
        code: "custom",
        path: ["normal"],
        message: "normal.min must be below normal.max",
      });
    }
    if (critical.min !== null && normal.min !== null && critical.min > normal.min) {
      ctx.addIssue({
        code: "custom",
        path: ["critical", "min"],
        message: "critical.min must not be above normal.min",
      });
    }
    if (critical.max !== null && normal.max !== null && critical.max < normal.max) {
      ctx.addIssue({
        code: "custom",
        path: ["critical", "max"],
        message: "critical.max must not be below normal.max",
      });
    }
  })
  .openapi("VitalRule");

export const vitalTypes = [
  "heart_rate",
  "systolic",
  "diastolic",
  "spo2",
  "body_temperature",
  "blood_glucose",
  "weight",
  "respiratory_rate",
] as const;
export type VitalType = (typeof vitalTypes)[number];

const unitFor: Record<VitalType, readonly string[]> = {
  heart_rate: ["/min"],
  systolic: ["mm[Hg]"],
  diastolic: ["mm[Hg]"],
  spo2: ["%"],
  body_temperature: ["Cel"],
  blood_glucose: ["mg/dL", "mmol/L"],
  weight: ["kg"],
  respiratory_rate: ["/min"],
};

export const VitalRulesSchema = z
  .strictObject(
    Object.fromEntries(vitalTypes.map((t) => [t, VitalRuleSchema])) as Record<
      VitalType,
      typeof VitalRuleSchema
    >,
  )
  .superRefine((rules, ctx) => {
    for (const type of vitalTypes) {
      const allowed = unitFor[type];
      if (!allowed.includes(rules[type].unit)) {
        ctx.addIssue({
          code: "custom",
          path: [type, "unit"],
          message: `the unit for ${type} is ${allowed.join(" or ")} (UCUM)`,
        });
      }
    }
  })
  .openapi("VitalRules");

export const EmergencyContactSchema = z
  .discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("member"), userId: z.string().min(1).max(64) }),
    z.strictObject({
      kind: z.literal("phone"),
      name: z.string().trim().min(1).max(120),
      phone: Phone,
      relationship: z.string().trim().max(60).nullable().default(null),
    }),
  ])
  .openapi("EmergencyContact", {
    description: "A member of the family circle, or a phone number (a neighbour, say)",
  });

export const CarePlanSchema = z
  .strictObject({
    goals: z.array(z.string().trim().min(1).max(500)).max(30),
    notes: z.string().max(10_000),
    tasks: z.array(TaskSchema).max(100),
    medications: z.array(MedicationSchema).max(100),
    vitalRules: VitalRulesSchema,
    checkInDeadline: LocalTime.nullable().openapi({
      description: "Daily 'I'm fine' deadline, local time; null: none",
    }),
    nightWindow: z.strictObject({ start: LocalTime, end: LocalTime }),
    noMotionHours: z
      .number()
      .min(1)
      .max(72)
      .openapi({ description: "Hours without any activity that count as 'no motion'" }),
    emergencyContacts: z.array(EmergencyContactSchema).max(20),
  })
  .superRefine((plan, ctx) => {
    for (const [list, items] of [
      ["tasks", plan.tasks],
      ["medications", plan.medications],
    ] as const) {
      const seen = new Set<string>();
      items.forEach((item, i) => {
        if (seen.has(item.id))
          ctx.addIssue({
            code: "custom",
            path: [list, i, "id"],
            message: `the id ${item.id} is used twice`,
          });
        seen.add(item.id);
      });
    }
  })
  .openapi("CarePlan");

export type CarePlan = z.infer<typeof CarePlanSchema>;

export const CarePlanVersionSchema = z
  .object({
    residentId: z.string(),
    version: z.number().int(),
    plan: CarePlanSchema,
    summary: z.string().nullable(),
    changes: z
      .array(z.string())
      .openapi({ description: "The sections changed from the previous version" }),
    createdAt: z.string(),
    createdBy: z.object({ id: z.string(), displayName: z.string() }).nullable(),
  })
  .openapi("CarePlanVersion");

export const CarePlanUpdateSchema = z
  .strictObject({
    baseVersion: z
      .number()
      .int()
      .min(1)
      .openapi({ description: "The version you edited; a newer one is a 409 version_conflict" }),
    plan: CarePlanSchema,
    summary: z.string().trim().max(500).optional(),
  })
  .openapi("CarePlanUpdate");

const rule = (
  unit: string,
  normal: [number | null, number | null],
  critical: [number | null, number | null],
  consecutive: number,
  hysteresis: number,
  enabled = true,
) => ({
  enabled,
  unit,
  normal: { min: normal[0], max: normal[1] },
  critical: { min: critical[0], max: critical[1] },
  consecutive,
  minutes: null,
  hysteresis,
});

/** What protects a resident before anyone edits the plan: conservative ranges for an older adult. */
export function defaultCarePlan(): CarePlan {
  return {
    goals: [],
    notes: "",
    tasks: [],
    medications: [],
    vitalRules: {
      heart_rate: rule("/min", [50, 110], [40, 130], 2, 5),
      systolic: rule("mm[Hg]", [90, 160], [80, 180], 2, 5),
      diastolic: rule("mm[Hg]", [50, 100], [40, 120], 2, 5),
      spo2: rule("%", [92, null], [88, null], 2, 1),
      body_temperature: rule("Cel", [35.5, 37.8], [35, 39.5], 1, 0.2),
      blood_glucose: rule("mg/dL", [70, 180], [54, 300], 1, 10),
      // Weight matters as a trend (sudden gain in heart failure); off until a clinician sets it.
      weight: rule("kg", [null, null], [null, null], 1, 0.5, false),
      respiratory_rate: rule("/min", [12, 24], [8, 30], 2, 2),
    },
    checkInDeadline: null,
    nightWindow: { start: "22:00", end: "07:00" },
    noMotionHours: 12,
    emergencyContacts: [],
  };
}
