// The Database interface: every table kincare has, composed from each domain's row types.
import type {
  PasswordResetsTable,
  SessionsTable,
  UserRolesTable,
  UsersTable,
} from "../accounts/accounts.table";
import type { AlertsTable, AlertTimelineTable } from "../alerts/alerts.table";
import type { AuditLogTable } from "../audit/audit.table";
import type { BookingTables } from "../bookings/bookings.table";
import type { CarePlanVersionsTable } from "../careplans/careplans.table";
import type { CircleMembersTable, InvitationsTable } from "../circles/circles.table";
import type {
  DeviceAssignmentsTable,
  DeviceEventsTable,
  DevicesTable,
  InstanceKeysTable,
  QuarantineTable,
  ReadingsTable,
  ResidentActivityTable,
  VitalStatesTable,
} from "../devices/devices.table";
import type {
  AlertFeedTable,
  DeskDutyTable,
  EscalationPoliciesTable,
} from "../escalation/escalation.table";
import type { JobsTable } from "../jobs/jobs.table";
import type { LedgerTables } from "../ledger/ledger.table";
import type { NeedTables } from "../needs/needs.table";
import type {
  DeliveriesTable,
  PhoneNumbersTable,
  PushSubscriptionsTable,
  SmsOutboxTable,
} from "../notifications/notifications.table";
import type { ProviderTables } from "../providers/providers.table";
import type { ResidentsTable } from "../residents/residents.table";
import type { ReviewTables } from "../reviews/reviews.table";
import type { SettingsTable } from "../settings/settings.table";
import type { VisitTables } from "../visits/visits.table";

export type Database = ProviderTables &
  LedgerTables &
  BookingTables &
  NeedTables &
  ReviewTables &
  VisitTables &
  CoreTables;

interface CoreTables {
  users: UsersTable;
  user_roles: UserRolesTable;
  sessions: SessionsTable;
  password_resets: PasswordResetsTable;
  residents: ResidentsTable;
  circle_members: CircleMembersTable;
  invitations: InvitationsTable;
  care_plan_versions: CarePlanVersionsTable;
  audit_log: AuditLogTable;
  settings: SettingsTable;
  jobs: JobsTable;
  instance_keys: InstanceKeysTable;
  devices: DevicesTable;
  device_assignments: DeviceAssignmentsTable;
  readings: ReadingsTable;
  device_events: DeviceEventsTable;
  quarantine: QuarantineTable;
  vital_states: VitalStatesTable;
  resident_activity: ResidentActivityTable;
  alerts: AlertsTable;
  alert_timeline: AlertTimelineTable;
  escalation_policies: EscalationPoliciesTable;
  push_subscriptions: PushSubscriptionsTable;
  phone_numbers: PhoneNumbersTable;
  deliveries: DeliveriesTable;
  sms_outbox: SmsOutboxTable;
  desk_duty: DeskDutyTable;
  alert_feed: AlertFeedTable;
}
