// What a visit carries from the care plan: the tasks and medications due in its window, in the
// resident's local time. A task "at every visit" is due once; a weekly task without times is due
// at every visit on its days; anything at a time is due when that local time falls in the visit.
import { addDays, weekdayOf } from "../bookings/schedule";
import type { CarePlan } from "../careplans/careplans.schemas";
import { localParts, zonedToUtc } from "../time";

export interface DueItem {
  kind: "task" | "medication";
  itemId: string;
  /** Local HH:MM it is due, or "" when it is due at the visit whatever the time. */
  dueTime: string;
  title: string;
  /** A medication's dose; null for a task. */
  dose: string | null;
  instructions: string | null;
}

export function dueItems(
  plan: Pick<CarePlan, "tasks" | "medications">,
  window: { startsAt: Date; endsAt: Date; timeZone: string },
): DueItem[] {
  const first = localParts(window.startsAt, window.timeZone).date;
  const last = localParts(window.endsAt, window.timeZone).date;
  const dates: string[] = [];
  for (let d = first; d <= last; d = addDays(d, 1)) dates.push(d);
  const inWindow = (date: string, time: string) => {
    const at = zonedToUtc(date, time, window.timeZone).getTime();
    return at >= window.startsAt.getTime() && at <= window.endsAt.getTime();
  };
  /** The times (in order, once each) among `times` that fall in the window on `days`. */
  const timesDue = (times: string[], days?: readonly string[]) => {
    const due = new Set<string>();
    for (const date of dates) {
      if (days && !days.includes(weekdayOf(date))) continue;
      for (const t of times) if (inWindow(date, t)) due.add(t);
    }
    return [...due].sort();
  };

  const items: DueItem[] = [];
  for (const task of plan.tasks) {
    const base = {
      kind: "task" as const,
      itemId: task.id,
      title: task.title,
      dose: null,
      instructions: task.instructions,
    };
    const s = task.schedule;
    if (s.kind === "every_visit") items.push({ ...base, dueTime: "" });
    else if (s.kind === "daily") {
      for (const t of timesDue(s.times)) items.push({ ...base, dueTime: t });
    } else if (s.times.length === 0) {
      if (dates.some((d) => s.days.includes(weekdayOf(d)))) items.push({ ...base, dueTime: "" });
    } else {
      for (const t of timesDue(s.times, s.days)) items.push({ ...base, dueTime: t });
    }
  }
  for (const med of plan.medications) {
    for (const t of timesDue(med.times)) {
      items.push({
        kind: "medication",
        itemId: med.id,
        dueTime: t,
        title: med.name,
        dose: med.dose,
        instructions: med.instructions,
      });
    }
  }
  return items;
}

/** The key an outcome is stored under. */
export function itemKey(i: { kind: string; itemId: string; dueTime: string }) {
  return `${i.kind}:${i.itemId}@${i.dueTime}`;
}
