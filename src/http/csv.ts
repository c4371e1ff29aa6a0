// CSV for spreadsheets (settlements, care reports, the EVV export): RFC 4180 quoting, one "\n"
// per line, and every text cell a spreadsheet would run as a formula defused. A cell starting with
// =, +, -, @, a tab or a carriage return gets a leading apostrophe, so "=HYPERLINK(...)" in a
// worker's name is shown as text, never evaluated. Numbers are written as they are (a negative
// amount stays a number).

export type CsvValue = string | number | boolean | null | undefined;

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(v: CsvValue): string {
  if (v === null || v === undefined) return "";
  const s = String(v);
  const safe = typeof v === "string" && FORMULA_START.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvRow(values: readonly CsvValue[]): string {
  return values.map(csvCell).join(",");
}

/** A header line and the rows, each line ended by "\n". */
export function csvDocument(
  header: readonly string[],
  rows: readonly (readonly CsvValue[])[],
): string {
  return `${[csvRow(header), ...rows.map(csvRow)].join("\n")}\n`;
}
