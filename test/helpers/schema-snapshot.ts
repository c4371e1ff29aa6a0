// Describes a migrated database in terms both SQLite and PostgreSQL can be compared by: tables,
// columns (name, a normalised type class, nullability, whether a default exists), primary and
// unique keys, foreign keys, explicitly named indexes and triggers. Names the databases choose
// themselves (sqlite_autoindex_users_1, users_pkey) are left out; the keys they back are kept.
import { sql } from "kysely";
import type { Db } from "../../src/db/database";

export type TypeClass = "text" | "integer" | "real" | `other:${string}`;

export interface TableShape {
  /** Column name -> "<type class>[ not null][ default]", in table order. */
  columns: Record<string, string>;
  primaryKey: string[];
  unique: string[][];
  foreignKeys: { columns: string[]; references: string; onDelete: string }[];
  indexes: { name: string; columns: string[]; unique: boolean; partial: boolean }[];
  triggers: string[];
}

export type SchemaShape = Record<string, TableShape>;

export function typeClass(declared: string): TypeClass {
  const t = declared.toLowerCase();
  if (/^(text|varchar|character varying|char|character|clob)\b/.test(t)) return "text";
  if (/^(integer|int|int2|int4|int8|bigint|smallint)$/.test(t)) return "integer";
  if (/^(real|float4|float8|double precision|double)$/.test(t)) return "real";
  return `other:${t}`;
}

const onDeleteWords: Record<string, string> = {
  a: "no action",
  r: "restrict",
  c: "cascade",
  n: "set null",
  d: "set default",
};

export async function describeSchema(db: Db, dialect: "sqlite" | "postgres"): Promise<SchemaShape> {
  let schema: string | undefined;
  if (dialect === "postgres") {
    const { rows } = await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db);
    schema = rows[0]!.s;
  }
  const fullText = dialect === "sqlite" ? await sqliteFullTextTables(db) : () => false;
  const tables = (await db.introspection.getTables()).filter(
    (t) => !t.isView && (schema === undefined || t.schema === schema) && !fullText(t.name),
  );
  const shape: SchemaShape = {};
  for (const table of tables.sort((a, b) => a.name.localeCompare(b.name))) {
    const keys =
      dialect === "sqlite" ? await sqliteKeys(db, table.name) : await postgresKeys(db, table.name);
    shape[table.name] = {
      columns: Object.fromEntries(
        table.columns.map((c) => {
          // SQLite lets a non-INTEGER PRIMARY KEY column hold NULL unless it also says NOT NULL
          // (a documented legacy quirk); PostgreSQL never does. Key columns count as not null
          // here so the comparison is about the schema the migrations meant to build.
          const nullable = c.isNullable && !keys.primaryKey.includes(c.name);
          // A sequence (bigserial on PostgreSQL, autoincrement on SQLite) counts as itself,
          // not as a default: PostgreSQL reports its nextval() default, SQLite none.
          const fill = c.isAutoIncrementing ? " auto" : c.hasDefaultValue ? " default" : "";
          const shape = `${typeClass(c.dataType)}${nullable ? "" : " not null"}${fill}`;
          return [c.name, shape];
        }),
      ),
      ...keys,
    };
  }
  return shape;
}

/**
 * Full-text indexes are the one part that differs by design (FTS5 on SQLite, GIN over a tsvector
 * on PostgreSQL): SQLite's virtual tables and their shadow tables, and PostgreSQL's GIN indexes,
 * are left out of the comparison.
 */
async function sqliteFullTextTables(db: Db): Promise<(name: string) => boolean> {
  const { rows } = await sql<{ name: string }>`
    SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'`.execute(
    db,
  );
  const virtual = rows.map((r) => r.name);
  return (name) => virtual.some((v) => name === v || name.startsWith(`${v}_`));
}

type Keys = Omit<TableShape, "columns">;

function tidy(keys: Keys): Keys {
  const byJson = <T>(a: T, b: T) => JSON.stringify(a).localeCompare(JSON.stringify(b));
  return {
    primaryKey: keys.primaryKey,
    unique: keys.unique.sort(byJson),
    foreignKeys: keys.foreignKeys.sort(byJson),
    indexes: keys.indexes.sort((a, b) => a.name.localeCompare(b.name)),
    triggers: [...new Set(keys.triggers)].sort(),
  };
}

async function sqliteKeys(db: Db, table: string): Promise<Keys> {
  const q = async <T>(query: string) => (await sql.raw<T>(query).execute(db)).rows;
  const name = table.replace(/'/g, "''");
  const info = await q<{ name: string; pk: number }>(`PRAGMA table_info('${name}')`);
  const primaryKey = info
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);

  const unique: string[][] = [];
  const indexes: TableShape["indexes"] = [];
  const list = await q<{ name: string; unique: number; origin: string; partial: number }>(
    `PRAGMA index_list('${name}')`,
  );
  for (const index of list) {
    const cols = (
      await q<{ seqno: number; name: string }>(
        `PRAGMA index_info('${index.name.replace(/'/g, "''")}')`,
      )
    )
      .sort((a, b) => a.seqno - b.seqno)
      .map((c) => c.name);
    if (index.origin === "pk") continue;
    if (index.origin === "u") unique.push(cols);
    else
      indexes.push({
        name: index.name,
        columns: cols,
        unique: index.unique === 1,
        partial: index.partial === 1,
      });
  }

  const fks = await q<{
    id: number;
    seq: number;
    table: string;
    from: string;
    to: string;
    on_delete: string;
  }>(`PRAGMA foreign_key_list('${name}')`);
  const byId = new Map<number, typeof fks>();
  for (const fk of fks) byId.set(fk.id, [...(byId.get(fk.id) ?? []), fk]);
  const foreignKeys = [...byId.values()].map((parts) => {
    const sorted = parts.sort((a, b) => a.seq - b.seq);
    return {
      columns: sorted.map((p) => p.from),
      references: `${sorted[0]!.table}(${sorted.map((p) => p.to).join(",")})`,
      onDelete: sorted[0]!.on_delete.toLowerCase(),
    };
  });

  const triggerRows = await q<{ sql: string }>(
    `SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '${name}'`,
  );
  const triggers = triggerRows.map((t) => {
    const m = /\b(BEFORE|AFTER|INSTEAD\s+OF)\s+(INSERT|UPDATE|DELETE)\b/i.exec(t.sql);
    return m ? `${m[1]!.toUpperCase()} ${m[2]!.toUpperCase()}` : `unparsed: ${t.sql}`;
  });

  return tidy({ primaryKey, unique, foreignKeys, indexes, triggers });
}

async function postgresKeys(db: Db, table: string): Promise<Keys> {
  const { rows: indexRows } = await sql<{
    name: string;
    is_unique: boolean;
    is_primary: boolean;
    partial: boolean;
    by_constraint: boolean;
    columns: string[];
  }>`
    SELECT i.relname AS name, ix.indisunique AS is_unique, ix.indisprimary AS is_primary,
      ix.indpred IS NOT NULL AS partial,
      EXISTS (SELECT 1 FROM pg_constraint c
              WHERE c.conindid = ix.indexrelid AND c.conrelid = t.oid AND c.contype IN ('p', 'u')) AS by_constraint,
      array(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
    FROM pg_index ix
    JOIN pg_class i ON i.oid = ix.indexrelid
    JOIN pg_class t ON t.oid = ix.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = current_schema() AND t.relname = ${table}
      AND i.relam <> (SELECT oid FROM pg_am WHERE amname = 'gin')`.execute(db);

  let primaryKey: string[] = [];
  const unique: string[][] = [];
  const indexes: TableShape["indexes"] = [];
  for (const ix of indexRows) {
    if (ix.is_primary) primaryKey = ix.columns;
    else if (ix.by_constraint) unique.push(ix.columns);
    else
      indexes.push({
        name: ix.name,
        columns: ix.columns,
        unique: ix.is_unique,
        partial: ix.partial,
      });
  }

  const { rows: fkRows } = await sql<{
    columns: string[];
    ref_table: string;
    ref_columns: string[];
    on_delete: string;
  }>`
    SELECT
      array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns,
      rt.relname AS ref_table,
      array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS ref_columns,
      c.confdeltype::text AS on_delete
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_class rt ON rt.oid = c.confrelid
    WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = ${table}`.execute(db);
  const foreignKeys = fkRows.map((fk) => ({
    columns: fk.columns,
    references: `${fk.ref_table}(${fk.ref_columns.join(",")})`,
    onDelete: onDeleteWords[fk.on_delete] ?? fk.on_delete,
  }));

  const { rows: triggerRows } = await sql<{ timing: string; event: string }>`
    SELECT action_timing AS timing, event_manipulation AS event
    FROM information_schema.triggers
    WHERE trigger_schema = current_schema() AND event_object_table = ${table}`.execute(db);
  const triggers = triggerRows.map((t) => `${t.timing.toUpperCase()} ${t.event.toUpperCase()}`);

  return tidy({ primaryKey, unique, foreignKeys, indexes, triggers });
}
