// Readings as a FHIR R4 Bundle of vital-sign Observations, for export to clinical systems:
// LOINC codes, UCUM quantities, the resident as subject and the device that measured.
// Blood pressure, stored as two rows, becomes one panel (85354-9) with systolic and diastolic
// components, paired by the message that carried them (device id + msgId).
// Observation ids are derived from (device, msgId, type), so exporting twice gives the same ids
// and a receiving system can recognise what it already has.
import { createHash } from "node:crypto";
import { newId } from "../ids";

const LOINC = "http://loinc.org";
const UCUM = "http://unitsofmeasure.org";
const PROFILE = "http://hl7.org/fhir/StructureDefinition/";

export const exportedTypes = [
  "heart_rate",
  "systolic",
  "diastolic",
  "spo2",
  "body_temperature",
  "blood_glucose",
  "weight",
  "respiratory_rate",
] as const;
type ExportedType = (typeof exportedTypes)[number];
type Simple = Exclude<ExportedType, "systolic" | "diastolic">;

interface Coding {
  system: string;
  code: string;
  display: string;
}

const coding = (code: string, display: string): Coding => ({ system: LOINC, code, display });

/** LOINC codings (the first is the one the protocol names), UCUM display and profile per type. */
const simple: Record<Simple, { codings: Coding[]; text: string; unit: string; profile?: string }> =
  {
    heart_rate: {
      codings: [coding("8867-4", "Heart rate")],
      text: "Heart rate",
      unit: "beats/minute",
      profile: "heartrate",
    },
    spo2: {
      // The vital-signs profile asks for 2708-6; 59408-5 says it came from a pulse oximeter.
      codings: [
        coding("2708-6", "Oxygen saturation in Arterial blood"),
        coding("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
      ],
      text: "Oxygen saturation",
      unit: "%",
      profile: "oxygensat",
    },
    body_temperature: {
      codings: [coding("8310-5", "Body temperature")],
      text: "Body temperature",
      unit: "C",
      profile: "bodytemp",
    },
    blood_glucose: {
      codings: [coding("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer")],
      text: "Blood glucose",
      unit: "mg/dL",
    },
    weight: {
      codings: [coding("29463-7", "Body weight")],
      text: "Body weight",
      unit: "kg",
      profile: "bodyweight",
    },
    respiratory_rate: {
      codings: [coding("9279-1", "Respiratory rate")],
      text: "Respiratory rate",
      unit: "breaths/minute",
      profile: "resprate",
    },
  };

const bloodPressure = {
  code: coding("85354-9", "Blood pressure panel with all children optional"),
  systolic: coding("8480-6", "Systolic blood pressure"),
  diastolic: coding("8462-4", "Diastolic blood pressure"),
};

const vitalSigns = [
  {
    coding: [
      {
        system: "http://terminology.hl7.org/CodeSystem/observation-category",
        code: "vital-signs",
        display: "Vital Signs",
      },
    ],
    text: "Vital Signs",
  },
];

export interface ExportReading {
  device_id: string;
  msg_id: string;
  type: string;
  value: number;
  unit: string;
  measured_at: string;
  received_at: string;
}

// RFC 9562 name-based UUID (version 5, SHA-1) in kincare's own namespace.
const NAMESPACE = Buffer.from("6f1c2a4e8b3d4f5aa9e07c1d2b3e4f50", "hex");
export function nameBasedUuid(name: string): string {
  const hash = createHash("sha1").update(NAMESPACE).update(name, "utf8").digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const quantity = (value: number, unit: string, code: string) => ({
  value: Number(value),
  unit,
  system: UCUM,
  code,
});

function observation(
  residentId: string,
  first: ExportReading,
  kind: string,
  body: Record<string, unknown>,
  profile: string | undefined,
) {
  const id = nameBasedUuid(`${first.device_id}\n${first.msg_id}\n${kind}`);
  return {
    fullUrl: `urn:uuid:${id}`,
    resource: {
      resourceType: "Observation",
      id,
      ...(profile ? { meta: { profile: [`${PROFILE}${profile}`] } } : {}),
      status: "final",
      category: vitalSigns,
      ...body,
      subject: { reference: `Patient/${residentId}` },
      effectiveDateTime: first.measured_at,
      issued: first.received_at,
      device: { reference: `Device/${first.device_id}` },
    },
  };
}

export type FhirEntry = ReturnType<typeof observation>;

/** Readings (oldest first) as Observations; the two halves of a blood pressure become one. */
export function vitalObservations(residentId: string, readings: ExportReading[]): FhirEntry[] {
  const entries: FhirEntry[] = [];
  const pressures = new Map<string, { systolic?: ExportReading; diastolic?: ExportReading }>();
  const order: (ExportReading | string)[] = [];
  for (const r of readings) {
    if (r.type === "systolic" || r.type === "diastolic") {
      const key = `${r.device_id}\n${r.msg_id}`;
      let pair = pressures.get(key);
      if (!pair) {
        pair = {};
        pressures.set(key, pair);
        order.push(key);
      }
      pair[r.type] = r;
    } else if (r.type in simple) {
      order.push(r);
    }
  }
  for (const item of order) {
    if (typeof item === "string") {
      const pair = pressures.get(item)!;
      const first = (pair.systolic ?? pair.diastolic)!;
      const component = (["systolic", "diastolic"] as const).flatMap((part) => {
        const r = pair[part];
        if (!r) return [];
        return [
          {
            code: { coding: [bloodPressure[part]], text: bloodPressure[part].display },
            valueQuantity: quantity(r.value, "mmHg", r.unit),
          },
        ];
      });
      entries.push(
        observation(
          residentId,
          first,
          "blood_pressure",
          { code: { coding: [bloodPressure.code], text: "Blood pressure" }, component },
          "bp",
        ),
      );
    } else {
      const spec = simple[item.type as Simple];
      entries.push(
        observation(
          residentId,
          item,
          item.type,
          {
            code: { coding: spec.codings, text: spec.text },
            valueQuantity: quantity(item.value, spec.unit, item.unit),
          },
          spec.profile,
        ),
      );
    }
  }
  return entries;
}

export function vitalsBundle(residentId: string, readings: ExportReading[], now: Date) {
  const entry = vitalObservations(residentId, readings);
  return {
    resourceType: "Bundle" as const,
    id: newId(),
    meta: { lastUpdated: now.toISOString() },
    type: "collection" as const,
    timestamp: now.toISOString(),
    entry,
  };
}
