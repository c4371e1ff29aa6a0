// When a booking's visits happen: once, or on given days of the week at a local time, for N weeks
// or until a date. Everything is computed on the resident's wall clock and turned into instants
// per occurrence, so "Tuesdays 09:00" stays 09:00 across a daylight-saving change.
import { z } from "zod";
import { zonedToUtc } from "../time";

export const weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type Weekday = (typeof weekdays)[number];

const LocalDate = z.iso.date({ message: "a date as YYYY-MM-DD" });
const LocalTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "a local time as HH:MM (24-hour)");

export const ScheduleSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("once"), date: LocalDate, time: LocalTime }),
  z
    .strictObject({
      type: z.literal("weekly"),
      days: z.array(z.enum(weekdays)).min(1).max(7),
      time: LocalTime,
      startDate: LocalDate,
      weeks: z.number().int().min(1).max(104).optional(),
      until: LocalDate.optional(),
    })
    .refine((s) => (s.weeks === undefined) !== (s.until === undefined), {
      message: "a weekly schedule runs for a number of weeks or until a date: give one of the two",
      path: ["weeks"],
    })
    .refine((s) => s.until === undefined || s.until >= s.startDate, {
      message: "the series cannot end before it starts",
      path: ["until"],
    }),
]);
export type Schedule = z.infer<typeof ScheduleSchema>;

export interface Occurrence {
  localDate: string;
  localTime: string;
  startsAt: Date;
  endsAt: Date;
}

export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

export function weekdayOf(date: string): Weekday {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return weekdays[(new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7]!;
}

/** The last local date of a series (inclusive). */
export function lastDate(s: Schedule): string {
  if (s.type === "once") return s.date;
  return s.until ?? addDays(s.startDate, s.weeks! * 7 - 1);
}

/** Occurrences whose local date lies in [from, through] (inclusive), in order. */
export function occurrences(
  s: Schedule,
  timeZone: string,
  durationMinutes: number,
  from: string,
  through: string,
): Occurrence[] {
  const at = (date: string, time: string): Occurrence => {
    const startsAt = zonedToUtc(date, time, timeZone);
    return {
      localDate: date,
      localTime: time,
      startsAt,
      endsAt: new Date(startsAt.getTime() + durationMinutes * 60_000),
    };
  };
  if (s.type === "once") return s.date >= from && s.date <= through ? [at(s.date, s.time)] : [];
  const out: Occurrence[] = [];
  const start = s.startDate > from ? s.startDate : from;
  const end = lastDate(s) < through ? lastDate(s) : through;
  for (let date = start; date <= end; date = addDays(date, 1)) {
    if (s.days.includes(weekdayOf(date))) out.push(at(date, s.time));
  }
  return out;
}
