// Ingest: every device message is validated, then stored with many others in one transaction
// (group commit); its sender is answered only once that transaction committed, so a device is
// never told "delivered" for a message that is not on disk. Events go before telemetry in every
// batch; malformed messages are counted and kept aside in quarantine, never thrown.
import { PostgresAdapter, sql } from "kysely";
import type { Raised } from "../alerts/alerts.service";
import { currentPlan } from "../careplans/careplans.service";
import type { Clock } from "../clock";
import { iso } from "../clock";
import { type Db, type Executor, type SqliteConnection, sqliteConnection } from "../db/database";
import { newId } from "../ids";
import type { Logger } from "../logger";
import type { SecretHasher } from "./credentials";
import { deviceOfflineKey, markDevicesSeen } from "./device-health";
import type { DeviceEventsTable, VitalStatesTable } from "./devices.table";
import {
  type DeviceEvent,
  type Heartbeat,
  MAX_PAYLOAD_BYTES,
  parseCmdAck,
  parseEvent,
  parseHeartbeat,
  parseStatus,
  parseTelemetry,
  parseTopic,
  Rejection,
  type Telemetry,
} from "./protocol";
import {
  applyEventRules,
  applyVitalRule,
  type ResidentContext,
  stateRow,
  type VitalState,
} from "./rules";

type Done = { resolve: () => void; reject: (error: Error) => void };

type Item =
  | { kind: "telemetry"; deviceId: string; topic: string; telemetry: Telemetry; done: Done }
  | { kind: "event"; deviceId: string; topic: string; event: DeviceEvent; done: Done }
  | { kind: "status"; deviceId: string; topic: string; status: "online" | "offline"; done: Done }
  | {
      kind: "quarantine";
      deviceId: string | null;
      topic: string;
      reason: string;
      detail: string;
      payload: string;
      done: Done;
    };

interface CachedDevice {
  status: "active" | "revoked";
  secretHash: string;
  assignments: { residentId: string; from: string; to: string | null }[];
  expires: number;
}

export interface CommittedEffects {
  /** New SOS presses stored (one per device message), to tell each device its alarm arrived. */
  sosReceived: { deviceId: string; msgId: string; alertId: string }[];
  raised: Raised[];
}

export interface IngestOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  hasher: SecretHasher;
  topicPrefix: string;
  settings: () => Promise<{ sosCancelWindowS: number }>;
  onCommitted?: (effects: CommittedEffects) => void;
  maxBatch?: number;
  cacheTtlMs?: number;
}

export interface IngestStats {
  stored: number;
  duplicates: number;
  batches: number;
  quarantined: Record<string, number>;
  failedBatches: number;
}

type ReadingKey = { device_id: string; msg_id: string; type: string };
type Accepted = { item: Exclude<Item, { kind: "quarantine" }>; residentId: string };
type EventRow = DeviceEventsTable;
/** How much telemetry may share a commit with events: an SOS must not wait on a big batch. */
const EVENT_BATCH_TELEMETRY = 100;

/** Readings and events of a batch that were stored before (by object), and how many readings. */
type Repeated = { repeated: Set<object>; repeatedReadings: number };

/** Events that show the resident is up and about (heartbeats, battery and tamper news do not). */
const activityEvents = new Set(["motion", "check_in", "door_open", "sos", "sos_cancel", "fall"]);

/**
 * SQLite's statements for every batch, prepared once and run per row. Through Kysely (compiled
 * anew for every query, never a cached prepared statement) a reading's insert cost about 21 µs;
 * a multi-row insert from one JSON parameter, about 17 µs (npm run bench:ingest,
 * devices/bench-ingest.ts). A prepared statement also says whether its row was new.
 */
function prepareSqlite(conn: SqliteConnection) {
  return {
    insertReading: conn.prepare<unknown[]>(`
      insert into readings (resident_id, device_id, msg_id, type, value, unit, measured_at, received_at)
      values (?, ?, ?, ?, ?, ?, ?, ?)
      on conflict (device_id, msg_id, type) do nothing`),
    insertEvent: conn.prepare<unknown[]>(`
      insert into device_events (resident_id, device_id, msg_id, type, occurred_at, received_at)
      values (?, ?, ?, ?, ?, ?)
      on conflict (device_id, msg_id) do nothing`),
    vitalState: conn.prepare<unknown[]>(
      "select * from vital_states where resident_id = ? and type = ?",
    ),
    saveVitalState: conn.prepare<unknown[]>(`
      insert into vital_states (resident_id, type, level, outside_count, outside_since, updated_at)
      values (?, ?, ?, ?, ?, ?)
      on conflict (resident_id, type) do update set level = excluded.level,
        outside_count = excluded.outside_count, outside_since = excluded.outside_since,
        updated_at = excluded.updated_at`),
  };
}
type SqliteStatements = ReturnType<typeof prepareSqlite>;

/**
 * PostgreSQL takes a batch's rows as one jsonb parameter: one short statement per table and
 * batch, parsed once, and RETURNING says which rows were new.
 */
const insertReadingsPg = (rows: string, receivedAt: string) => sql<ReadingKey>`
  insert into readings (resident_id, device_id, msg_id, type, value, unit, measured_at, received_at)
  select r->>0, r->>1, r->>2, r->>3, (r->>4)::double precision, r->>5, r->>6, ${receivedAt}::text
  from jsonb_array_elements(${rows}::jsonb) as r
  on conflict (device_id, msg_id, type) do nothing
  returning device_id, msg_id, type`;

const upsertVitalStatesPg = (rows: string) => sql`
  insert into vital_states (resident_id, type, level, outside_count, outside_since, updated_at)
  select r->>0, r->>1, r->>2, (r->>3)::integer, r->>4, r->>5
  from jsonb_array_elements(${rows}::jsonb) as r
  on conflict (resident_id, type) do update set level = excluded.level,
    outside_count = excluded.outside_count, outside_since = excluded.outside_since,
    updated_at = excluded.updated_at`;

export class Ingest {
  readonly stats: IngestStats = {
    stored: 0,
    duplicates: 0,
    batches: 0,
    quarantined: {},
    failedBatches: 0,
  };
  private events: Item[] = [];
  private others: Item[] = [];
  private flushing = false;
  private scheduled = false;
  private stopped = false;
  private idle: (() => void)[] = [];
  private readonly devices = new Map<string, CachedDevice>();
  private readonly residents = new Map<string, { ctx: ResidentContext; expires: number }>();
  private readonly vitals = new Map<string, VitalState>();
  private readonly seen = new Map<string, string>();
  private seenTimer: NodeJS.Timeout | undefined;
  private readonly maxBatch: number;
  private readonly ttl: number;
  /** Set on SQLite, prepared on the first batch (the tables exist once migrations ran). */
  private sqliteStatements: SqliteStatements | undefined;
  private readonly sqliteConn: SqliteConnection | undefined;

  constructor(private readonly o: IngestOptions) {
    if (!(o.db.getExecutor().adapter instanceof PostgresAdapter)) {
      this.sqliteConn = sqliteConnection(o.db);
      if (!this.sqliteConn) throw new Error("ingest on SQLite needs a handle from openDatabase");
    }
    this.maxBatch = o.maxBatch ?? 2000;
    this.ttl = o.cacheTtlMs ?? 5_000;
    this.seenTimer = setInterval(() => void this.flushSeen(), 5_000);
    this.seenTimer.unref?.();
  }

  /** Checks a device's credentials (MQTT username = device id, password = secret). */
  async authenticate(deviceId: string, secret: string): Promise<boolean> {
    const device = await this.device(deviceId);
    return (
      device !== null &&
      device.status === "active" &&
      this.o.hasher.verify(secret, device.secretHash)
    );
  }

  /** Forgets what is cached about a device (after rotate, revoke, reassign in this process). */
  forgetDevice(deviceId: string): void {
    this.devices.delete(deviceId);
  }

  forgetResident(residentId: string): void {
    this.residents.delete(residentId);
  }

  /**
   * Takes one message as received on `topic`. Resolves once it is committed (stored, recognised
   * as a duplicate, or quarantined); rejects only if it could not be committed at all.
   */
  submit(topic: string, payload: Buffer): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("ingest is stopped"));
    const done = this.submitInner(topic, payload);
    if (this.processedWaiters.length === 0) return done;
    return done.finally(() => this.noteProcessed(topic));
  }

  private processedCounts = new Map<string, number>();
  private processedWaiters: { topic: string; count: number; resolve: () => void }[] = [];

  /**
   * Resolves once `count` more messages on `topic` have been processed (stored, recognised as
   * duplicates, or quarantined). With an external broker a device's PUBACK comes from the broker
   * before kincare has the message: tests wait with this instead of sleeping.
   */
  waitProcessed(topic: string, count = 1, timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const target = (this.processedCounts.get(topic) ?? 0) + count;
      const timer = setTimeout(
        () => reject(new Error(`${topic}: not processed within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.processedWaiters.push({
        topic,
        count: target,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private noteProcessed(topic: string) {
    const n = (this.processedCounts.get(topic) ?? 0) + 1;
    this.processedCounts.set(topic, n);
    this.processedWaiters = this.processedWaiters.filter((w) => {
      if (w.topic !== topic || w.count > n) return true;
      w.resolve();
      return false;
    });
  }

  private submitInner(topic: string, payload: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = { resolve, reject };
      const item = this.parse(topic, payload, done);
      if (!item) {
        resolve();
        return;
      }
      if (item.kind === "event" || item.kind === "status") this.events.push(item);
      else this.others.push(item);
      this.schedule();
    });
  }

  /** Waits for everything submitted so far to be committed. */
  async drain(): Promise<void> {
    if (!this.flushing && this.events.length === 0 && this.others.length === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  async stop(): Promise<void> {
    await this.drain();
    this.stopped = true;
    if (this.seenTimer) clearInterval(this.seenTimer);
    await this.flushSeen();
  }

  private parse(topic: string, payload: Buffer, done: Done): Item | null {
    const now = this.o.clock.now();
    const parsed = parseTopic(this.o.topicPrefix, topic);
    const quarantine = (deviceId: string | null, error: unknown): Item => {
      const reason = error instanceof Rejection ? error.reason : "bad_shape";
      const detail = error instanceof Error ? error.message : String(error);
      return {
        kind: "quarantine",
        deviceId,
        topic: topic.slice(0, 300),
        reason,
        detail,
        payload: payload.subarray(0, 2048).toString("utf8"),
        done,
      };
    };
    if (!parsed)
      return quarantine(null, new Rejection("unknown_topic", "not a kincare device topic"));
    const { deviceId, channel } = parsed;
    try {
      switch (channel) {
        case "telemetry":
          return {
            kind: "telemetry",
            deviceId,
            topic,
            telemetry: parseTelemetry(payload, now),
            done,
          };
        case "event":
          return { kind: "event", deviceId, topic, event: parseEvent(payload, now), done };
        case "status":
          return { kind: "status", deviceId, topic, status: parseStatus(payload), done };
        case "heartbeat":
          this.noteHeartbeat(deviceId, parseHeartbeat(payload, now));
          return null;
        case "cmd/ack":
          parseCmdAck(payload);
          this.seen.set(deviceId, iso(now));
          return null;
      }
    } catch (error) {
      if (payload.length > MAX_PAYLOAD_BYTES && !(error instanceof Rejection))
        return quarantine(deviceId, new Rejection("too_large", "payload too large"));
      return quarantine(deviceId, error);
    }
  }

  private get sqlite(): SqliteStatements | undefined {
    if (this.sqliteConn && !this.sqliteStatements)
      this.sqliteStatements = prepareSqlite(this.sqliteConn);
    return this.sqliteStatements;
  }

  private heartbeats = new Map<string, Heartbeat>();
  private noteHeartbeat(deviceId: string, hb: Heartbeat) {
    this.heartbeats.set(deviceId, hb);
    this.seen.set(deviceId, iso(this.o.clock.now()));
  }

  private schedule() {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // One tick lets the messages that arrived together share a commit.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.events.length > 0 || this.others.length > 0) {
        const batch = this.events.splice(0, this.events.length);
        // A batch carrying events (an SOS) takes little telemetry along, so its commit is quick.
        const room =
          batch.length > 0 ? Math.min(EVENT_BATCH_TELEMETRY, this.maxBatch) : this.maxBatch;
        batch.push(...this.others.splice(0, Math.max(0, room - batch.length)));
        await this.commitBatch(batch);
        // better-sqlite3 answers synchronously, so a backlog would keep this loop on microtasks
        // and starve timers and sockets: the job scheduler (an SOS's escalation) and new
        // messages (an SOS's PUBACK) get their turn between batches.
        if (this.events.length > 0 || this.others.length > 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } finally {
      this.flushing = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async commitBatch(batch: Item[]): Promise<void> {
    try {
      const effects = await this.store(batch);
      this.stats.batches++;
      for (const item of batch) item.done.resolve();
      this.afterCommit(effects);
    } catch (error) {
      // One bad message must not sink the others: try each alone, and fail only those that fail.
      this.stats.failedBatches++;
      this.vitals.clear();
      this.o.logger.warn(
        { err: error, size: batch.length },
        "a batch failed to commit; retrying its messages one by one",
      );
      if (batch.length === 1) {
        batch[0]!.done.reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      for (const item of batch) {
        try {
          const effects = await this.store([item]);
          item.done.resolve();
          this.afterCommit(effects);
        } catch (e) {
          this.vitals.clear();
          this.o.logger.error(
            { err: e, kind: item.kind },
            "a device message could not be stored; the device will send it again",
          );
          item.done.reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
    }
  }

  private afterCommit(effects: CommittedEffects & { vitals: Map<string, VitalState> }) {
    for (const [key, state] of effects.vitals) this.vitals.set(key, state);
    if (effects.sosReceived.length > 0 || effects.raised.length > 0) this.o.onCommitted?.(effects);
  }

  private async store(
    batch: Item[],
  ): Promise<CommittedEffects & { vitals: Map<string, VitalState> }> {
    const now = this.o.clock.now();
    const receivedAt = iso(now);
    const settings = await this.o.settings();
    const effects: CommittedEffects & { vitals: Map<string, VitalState> } = {
      sosReceived: [],
      raised: [],
      vitals: new Map(),
    };
    // Resolve devices and residents before the transaction: cache reads, no writes.
    await this.refreshDevices(batch);
    const quarantined: Extract<Item, { kind: "quarantine" }>[] = [];
    const accepted: Accepted[] = [];
    for (const item of batch) {
      if (item.kind === "quarantine") {
        quarantined.push(item);
        continue;
      }
      const device = this.cachedDevice(item.deviceId) ?? (await this.device(item.deviceId));
      if (device?.status !== "active") {
        quarantined.push({
          kind: "quarantine",
          deviceId: item.deviceId,
          topic: item.topic.slice(0, 300),
          reason: "unknown_device",
          detail: "no active device with this id",
          payload: "",
          done: item.done,
        });
        continue;
      }
      const at =
        item.kind === "telemetry"
          ? item.telemetry.measuredAt
          : item.kind === "event"
            ? item.event.occurredAt
            : receivedAt;
      const assignment =
        device.assignments.find((a) => a.from <= at && (a.to === null || at < a.to)) ??
        device.assignments.at(-1);
      if (!assignment) continue;
      accepted.push({ item, residentId: assignment.residentId });
      this.seen.set(item.deviceId, receivedAt);
      this.noteActivity(item, assignment.residentId);
    }
    const contexts = new Map<string, ResidentContext>();
    for (const { residentId } of accepted) {
      if (!contexts.has(residentId))
        contexts.set(residentId, await this.residentContext(residentId));
    }

    await this.o.db.transaction().execute(async (trx) => {
      // What a device sent before (its retry, or the same msgId twice in this batch): stored once,
      // judged once. Readings and events are marked by object, in arrival order.
      const { repeated, repeatedReadings } = this.sqlite
        ? this.insertSqlite(this.sqlite, accepted, receivedAt)
        : await this.insertPostgres(trx, accepted, receivedAt);
      let readings = 0;
      for (const { item } of accepted)
        if (item.kind === "telemetry") readings += item.telemetry.readings.length;
      this.stats.stored += readings - repeatedReadings;
      this.stats.duplicates += repeatedReadings;

      if (quarantined.length > 0) {
        await trx
          .insertInto("quarantine")
          .values(
            quarantined.map((item) => ({
              id: newId(),
              device_id: item.deviceId,
              topic: item.topic,
              reason: item.reason,
              detail: item.detail.slice(0, 500),
              payload: item.payload,
              received_at: receivedAt,
            })),
          )
          .execute();
      }

      // Rules, in arrival order, only for what is new: a device's retry raises nothing twice.
      for (const { item, residentId } of accepted) {
        const ctx = contexts.get(residentId)!;
        if (item.kind === "event") {
          if (repeated.has(item.event)) continue;
          const result = await applyEventRules(
            trx,
            ctx,
            { deviceId: item.deviceId, ...item.event },
            now,
            settings,
          );
          if (result.raised) effects.raised.push(result.raised);
          if (item.event.type === "sos" && result.raised) {
            effects.sosReceived.push({
              deviceId: item.deviceId,
              msgId: item.event.msgId,
              alertId: result.raised.alert.id,
            });
          }
        } else if (item.kind === "telemetry") {
          for (const reading of item.telemetry.readings) {
            if (repeated.has(reading)) continue;
            const key = `${residentId}\u0000${reading.type}`;
            const before =
              effects.vitals.get(key) ??
              this.vitals.get(key) ??
              (await this.vitalState(trx, residentId, reading.type));
            const after = await applyVitalRule(
              trx,
              ctx,
              { ...reading, deviceId: item.deviceId, msgId: item.telemetry.msgId },
              before,
              now,
            );
            if (after !== before) effects.vitals.set(key, after);
          }
        } else if (item.kind === "status") {
          await markDevicesSeen(
            trx,
            [{ deviceId: item.deviceId, at: receivedAt, connection: item.status }],
            now,
          );
        }
      }
      if (effects.vitals.size > 0) await this.saveVitalStates(trx, effects.vitals, now);
    });
    for (const q of quarantined)
      this.stats.quarantined[q.reason] = (this.stats.quarantined[q.reason] ?? 0) + 1;
    return effects;
  }

  /**
   * SQLite: one prepared statement run per row, which says whether the row was new. This
   * transaction holds the only connection, so the statements run inside it.
   */
  private insertSqlite(s: SqliteStatements, accepted: Accepted[], receivedAt: string): Repeated {
    const repeated = new Set<object>();
    let repeatedReadings = 0;
    for (const { item, residentId } of accepted) {
      if (item.kind === "telemetry") {
        const t = item.telemetry;
        for (const r of t.readings) {
          const { changes } = s.insertReading.run(
            residentId,
            item.deviceId,
            t.msgId,
            r.type,
            r.value,
            r.unit,
            r.measuredAt,
            receivedAt,
          );
          if (changes === 0) {
            repeated.add(r);
            repeatedReadings++;
          }
        }
      } else if (item.kind === "event") {
        const e = item.event;
        const { changes } = s.insertEvent.run(
          residentId,
          item.deviceId,
          e.msgId,
          e.type,
          e.occurredAt,
          receivedAt,
        );
        if (changes === 0) repeated.add(e);
      }
    }
    return { repeated, repeatedReadings };
  }

  /** PostgreSQL: one statement per table and batch; what it returns is what was new. */
  private async insertPostgres(
    trx: Executor,
    accepted: Accepted[],
    receivedAt: string,
  ): Promise<Repeated> {
    const repeated = new Set<object>();
    let repeatedReadings = 0;
    const readingRows: (string | number)[][] = [];
    const eventRows: EventRow[] = [];
    for (const { item, residentId } of accepted) {
      if (item.kind === "telemetry") {
        const t = item.telemetry;
        for (const r of t.readings)
          readingRows.push([
            residentId,
            item.deviceId,
            t.msgId,
            r.type,
            r.value,
            r.unit,
            r.measuredAt,
          ]);
      } else if (item.kind === "event") {
        eventRows.push({
          resident_id: residentId,
          device_id: item.deviceId,
          msg_id: item.event.msgId,
          type: item.event.type,
          occurred_at: item.event.occurredAt,
          received_at: receivedAt,
        });
      }
    }
    const freshReadings = new Set<string>();
    const freshEvents = new Set<string>();
    let allNew = true;
    if (readingRows.length > 0) {
      const { rows } = await insertReadingsPg(JSON.stringify(readingRows), receivedAt).execute(trx);
      allNew = rows.length === readingRows.length;
      if (!allNew)
        for (const r of rows) freshReadings.add(`${r.device_id}\u0000${r.msg_id}\u0000${r.type}`);
    }
    if (eventRows.length > 0) {
      const rows = await trx
        .insertInto("device_events")
        .values(eventRows)
        .onConflict((oc) => oc.columns(["device_id", "msg_id"]).doNothing())
        .returning(["device_id", "msg_id"])
        .execute();
      for (const r of rows) freshEvents.add(`${r.device_id}\u0000${r.msg_id}`);
    }
    // A key returned once is new once: its first occurrence in the batch.
    for (const { item } of accepted) {
      if (item.kind === "event") {
        if (!freshEvents.delete(`${item.deviceId}\u0000${item.event.msgId}`))
          repeated.add(item.event);
      } else if (item.kind === "telemetry" && !allNew) {
        for (const r of item.telemetry.readings)
          if (
            !freshReadings.delete(`${item.deviceId}\u0000${item.telemetry.msgId}\u0000${r.type}`)
          ) {
            repeated.add(r);
            repeatedReadings++;
          }
      }
    }
    return { repeated, repeatedReadings };
  }

  private async saveVitalStates(
    trx: Executor,
    states: Map<string, VitalState>,
    now: Date,
  ): Promise<void> {
    const rows = [...states].map(([key, state]) => {
      const [residentId, type] = key.split("\u0000") as [string, string];
      const row: VitalStatesTable = stateRow(residentId, type, state, now);
      return [
        row.resident_id,
        row.type,
        row.level,
        row.outside_count,
        row.outside_since,
        row.updated_at,
      ] as const;
    });
    if (this.sqlite) {
      for (const row of rows) this.sqlite.saveVitalState.run(...row);
      return;
    }
    await upsertVitalStatesPg(JSON.stringify(rows)).execute(trx);
  }

  private async vitalState(db: Executor, residentId: string, type: string): Promise<VitalState> {
    const cached = this.vitals.get(`${residentId}\u0000${type}`);
    if (cached) return cached;
    const row = this.sqlite
      ? (this.sqlite.vitalState.get(residentId, type) as VitalStatesTable | undefined)
      : await db
          .selectFrom("vital_states")
          .selectAll()
          .where("resident_id", "=", residentId)
          .where("type", "=", type)
          .executeTakeFirst();
    const state: VitalState = row
      ? {
          level: row.level,
          outsideCount: row.outside_count,
          outsideSince: row.outside_since,
          lastMeasuredAt: row.updated_at,
        }
      : { level: "normal", outsideCount: 0, outsideSince: null, lastMeasuredAt: "" };
    // What is read is committed: keep it, or a vital no rule judges (steps, a disabled weight
    // rule), which never changes state, is read again for every reading.
    this.vitals.set(`${residentId}\u0000${type}`, state);
    return state;
  }

  /**
   * Reads again, in two queries, every device of the batch whose cached entry expired: a thousand
   * devices' entries expire together, and one query each stalled ingest every few seconds.
   */
  private async refreshDevices(batch: Item[]): Promise<void> {
    const now = Date.now();
    const stale = new Set<string>();
    for (const item of batch) {
      if (item.kind === "quarantine") continue;
      const cached = this.devices.get(item.deviceId);
      if (!cached || cached.expires <= now) stale.add(item.deviceId);
    }
    if (stale.size < 2) return;
    const ids = [...stale];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = await this.o.db
        .selectFrom("devices")
        .select(["id", "status", "secret_hash"])
        .where("id", "in", chunk)
        .execute();
      const assignments = await this.o.db
        .selectFrom("device_assignments")
        .select(["device_id", "resident_id", "from_at", "to_at"])
        .where("device_id", "in", chunk)
        .orderBy("from_at")
        .execute();
      const expires = Date.now() + this.ttl;
      const entries = new Map<string, CachedDevice>();
      for (const row of rows) {
        entries.set(row.id, {
          status: row.status,
          secretHash: row.secret_hash,
          assignments: [],
          expires,
        });
      }
      for (const a of assignments) {
        entries
          .get(a.device_id)
          ?.assignments.push({ residentId: a.resident_id, from: a.from_at, to: a.to_at });
      }
      for (const [id, entry] of entries) this.devices.set(id, entry);
    }
  }

  /** The cached entry while it is fresh: no promise per message for the common case. */
  private cachedDevice(deviceId: string): CachedDevice | undefined {
    const cached = this.devices.get(deviceId);
    return cached && cached.expires > Date.now() ? cached : undefined;
  }

  private async device(deviceId: string): Promise<CachedDevice | null> {
    const cached = this.cachedDevice(deviceId);
    if (cached) return cached;
    const row = await this.o.db
      .selectFrom("devices")
      .select(["status", "secret_hash"])
      .where("id", "=", deviceId)
      .executeTakeFirst();
    if (!row) {
      this.devices.delete(deviceId);
      return null;
    }
    const assignments = await this.o.db
      .selectFrom("device_assignments")
      .select(["resident_id", "from_at", "to_at"])
      .where("device_id", "=", deviceId)
      .orderBy("from_at")
      .execute();
    const entry: CachedDevice = {
      status: row.status,
      secretHash: row.secret_hash,
      assignments: assignments.map((a) => ({
        residentId: a.resident_id,
        from: a.from_at,
        to: a.to_at,
      })),
      expires: Date.now() + this.ttl,
    };
    this.devices.set(deviceId, entry);
    return entry;
  }

  private async residentContext(residentId: string): Promise<ResidentContext> {
    const cached = this.residents.get(residentId);
    if (cached && cached.expires > Date.now()) return cached.ctx;
    const resident = await this.o.db
      .selectFrom("residents")
      .select(["status", "time_zone"])
      .where("id", "=", residentId)
      .executeTakeFirstOrThrow();
    const plan = await currentPlan(this.o.db, residentId);
    const ctx: ResidentContext = {
      residentId,
      status: resident.status,
      timeZone: resident.time_zone,
      plan: plan.plan,
    };
    this.residents.set(residentId, { ctx, expires: Date.now() + this.ttl });
    return ctx;
  }

  private readonly activity = new Map<string, { at: string; checkIn: string | null }>();

  /** Signs of life: a reading taken, a motion, a door, a press. Heartbeats and battery news are not. */
  private noteActivity(item: Exclude<Item, { kind: "quarantine" }>, residentId: string) {
    let at: string | null = null;
    let checkIn: string | null = null;
    if (item.kind === "telemetry") at = item.telemetry.measuredAt;
    else if (item.kind === "event" && activityEvents.has(item.event.type)) {
      at = item.event.occurredAt;
      if (item.event.type === "check_in") checkIn = at;
    }
    if (!at) return;
    const known = this.activity.get(residentId);
    this.activity.set(residentId, {
      at: known && known.at > at ? known.at : at,
      checkIn: known?.checkIn && (!checkIn || known.checkIn > checkIn) ? known.checkIn : checkIn,
    });
  }

  private async flushActivity(): Promise<void> {
    if (this.activity.size === 0) return;
    const entries = [...this.activity];
    this.activity.clear();
    try {
      await this.o.db.transaction().execute(async (trx) => {
        for (const [residentId, a] of entries) {
          await trx
            .insertInto("resident_activity")
            .values({
              resident_id: residentId,
              last_activity_at: a.at,
              last_check_in_at: a.checkIn,
            })
            .onConflict((oc) =>
              // Keep the later of the stored and the new time (messages may arrive out of order).
              oc.column("resident_id").doUpdateSet({
                last_activity_at: sql`case when excluded.last_activity_at > resident_activity.last_activity_at
                  then excluded.last_activity_at else resident_activity.last_activity_at end`,
                last_check_in_at: sql`case when excluded.last_check_in_at > coalesce(resident_activity.last_check_in_at, '')
                  then excluded.last_check_in_at else resident_activity.last_check_in_at end`,
              }),
            )
            .execute();
        }
      });
    } catch (error) {
      this.o.logger.warn({ err: error }, "could not record residents' last activity; will retry");
      for (const [residentId, a] of entries)
        if (!this.activity.has(residentId)) this.activity.set(residentId, a);
    }
  }

  /** Writes when devices and residents were last heard from: every few seconds, not per message. */
  async flushSeen(): Promise<void> {
    await this.flushActivity();
    if (this.seen.size === 0) return;
    const seen = [...this.seen].map(([deviceId, at]) => {
      const hb = this.heartbeats.get(deviceId);
      return { deviceId, at, ...(hb ? { battery: hb.battery, rssi: hb.rssi } : {}) };
    });
    this.seen.clear();
    this.heartbeats.clear();
    try {
      await this.o.db
        .transaction()
        .execute((trx) => markDevicesSeen(trx, seen, this.o.clock.now()));
    } catch (error) {
      this.o.logger.warn(
        { err: error },
        "could not record when devices were last seen; will retry",
      );
      for (const s of seen) if (!this.seen.has(s.deviceId)) this.seen.set(s.deviceId, s.at);
    }
  }
}

export { deviceOfflineKey };
