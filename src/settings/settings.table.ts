export interface SettingsTable {
  key: string;
  /** JSON value. */
  value: string;
  updated_at: string;
  updated_by: string | null;
}
