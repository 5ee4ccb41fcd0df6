import { polkuError } from '../errors.js';
import { Outcome, Severity, type Event } from '../gen/polku/v1/event.js';
import { PAYLOAD_FORMAT, PAYLOAD_FORMAT_JSON } from '../metadata-keys.js';

/**
 * The event fields PostgresEmitter can write, each with the SQL array type its values are sent as
 * (one array per column per batch: `INSERT … SELECT … FROM unnest($1::text[], …)`).
 * A user table's column must accept the field's type by assignment (text into varchar, jsonb into
 * jsonb, …).
 */
export const POSTGRES_FIELDS = {
  /** `event.id`; the conflict target: resends of an event never add a row. */
  id: 'text',
  /** `timestamp_unix_ns` to the microsecond (PostgreSQL's resolution); nanoseconds are cut. */
  time: 'timestamptz',
  source: 'text',
  event_type: 'text',
  /** `INFO`, `ERROR`, … (the enum name without `SEVERITY_`). */
  severity: 'text',
  /** `SUCCESS`, `FAILURE`, … (the enum name without `OUTCOME_`). */
  outcome: 'text',
  /** Every metadata key and value, as one JSON object. */
  metadata: 'jsonb',
  /** The payload's bytes exactly as received: every format (protobuf from agents, text, JSON) survives. */
  payload: 'bytea',
  /**
   * The payload as jsonb when the event says it is JSON (`polku.payload.format=json`), else NULL.
   * Not in the default table; map it to a jsonb column to query payloads with `->`.
   */
  payload_json: 'jsonb',
} as const;

export type PostgresField = keyof typeof POSTGRES_FIELDS;

/**
 * Which column each field goes to. A field left out is not written; `id` is required. The
 * default writes every field of the default table to the column of the same name.
 */
export type PostgresColumns = Partial<Record<PostgresField, string>>;

export const DEFAULT_POSTGRES_TABLE = 'polku_events';

export const DEFAULT_POSTGRES_COLUMNS: Readonly<PostgresColumns> = Object.freeze({
  id: 'id',
  time: 'time',
  source: 'source',
  event_type: 'event_type',
  severity: 'severity',
  metadata: 'metadata',
  payload: 'payload',
});

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** `name` or `schema.name`, each part a plain identifier, double-quoted for SQL. */
export function quoteTable(owner: string, table: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw polkuError(
      'POLKU_ERR_PIPELINE_INVALID',
      `${owner}: table ${JSON.stringify(table)} must be name or schema.name, each a letter or _ then letters, digits, _ or $ (at most 63)`,
    );
  }
  return parts.map((p) => `"${p}"`).join('.');
}

function quoteColumn(owner: string, field: string, column: string): string {
  if (!IDENTIFIER.test(column)) {
    throw polkuError(
      'POLKU_ERR_PIPELINE_INVALID',
      `${owner}: columns.${field} ${JSON.stringify(column)} must be a letter or _ then letters, digits, _ or $ (at most 63)`,
    );
  }
  return `"${column}"`;
}

/** The default table, as `polku sinks init postgres` creates it. */
export function defaultTableDdl(table: string = DEFAULT_POSTGRES_TABLE): string {
  const name = quoteTable('postgres', table);
  return `CREATE TABLE IF NOT EXISTS ${name} (
  id          text        PRIMARY KEY,
  time        timestamptz NOT NULL,
  source      text        NOT NULL,
  event_type  text        NOT NULL,
  severity    text        NOT NULL,
  metadata    jsonb       NOT NULL,
  payload     bytea       NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
)`;
}

/** One batch as column arrays, in the mapped fields' order: the statement's parameters. */
export type ColumnArrays = unknown[][];

/** The INSERT statement for a table and mapping, and the per-batch column builder. */
export interface InsertPlan {
  readonly sql: string;
  readonly fields: readonly PostgresField[];
  /** The batch as one array per mapped field (one pass over the events). */
  columns(events: readonly Event[]): ColumnArrays;
}

const EPOCH_TIME = "(timestamptz 'epoch' + %s * interval '1 microsecond')";

/**
 * `INSERT INTO t (cols) SELECT … FROM unnest($1::text[], …) AS u(…) ON CONFLICT (id) DO NOTHING`:
 * a fixed number of parameters whatever the batch size, one statement per batch. Measured here
 * against a multi-row `VALUES` list and COPY into a temp table + `INSERT … SELECT … ON CONFLICT`
 * (docs/benchmarks.md, "Sinks"): at 500 rows a batch it was the fastest of the three.
 * The conflict target is the id column: a user table needs a unique index on it, and a row
 * breaking any other unique constraint is refused (23505), not silently skipped.
 */
export function insertPlan(owner: string, table: string, mapping: PostgresColumns): InsertPlan {
  const quotedTable = quoteTable(owner, table);
  const fields = (Object.keys(POSTGRES_FIELDS) as PostgresField[]).filter((f) => mapping[f] !== undefined);
  for (const key of Object.keys(mapping)) {
    if (!(key in POSTGRES_FIELDS)) {
      throw polkuError(
        'POLKU_ERR_PIPELINE_INVALID',
        `${owner}: columns.${key} is not an event field; the fields are ${Object.keys(POSTGRES_FIELDS).join(', ')}`,
      );
    }
  }
  if (mapping.id === undefined) throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: columns.id is required (the conflict target)`);
  const seen = new Map<string, string>();
  for (const f of fields) {
    const column = mapping[f]!;
    const other = seen.get(column);
    if (other !== undefined)
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: columns.${f} and columns.${other} both name "${column}"`);
    seen.set(column, f);
  }
  const columns = fields.map((f) => quoteColumn(owner, f, mapping[f]!));
  const arrays = fields.map((f, i) => `$${i + 1}::${f === 'time' ? 'bigint' : POSTGRES_FIELDS[f]}[]`);
  const names = fields.map((f) => `u_${f}`);
  const selects = fields.map((f) => (f === 'time' ? EPOCH_TIME.replace('%s', 'u_time') : `u_${f}`));
  const sql =
    `INSERT INTO ${quotedTable} (${columns.join(', ')}) ` +
    `SELECT ${selects.join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${names.join(', ')}) ` +
    `ON CONFLICT (${quoteColumn(owner, 'id', mapping.id)}) DO NOTHING`;
  const readers = fields.map(fieldReader);
  return {
    sql,
    fields,
    columns(events) {
      const out: unknown[][] = readers.map(() => new Array<unknown>(events.length));
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        for (let c = 0; c < readers.length; c++) out[c]![i] = readers[c]!(e);
      }
      return out;
    },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function fieldReader(field: PostgresField): (e: Event) => unknown {
  switch (field) {
    case 'id':
      return (e) => e.id;
    // Microseconds as a decimal string: a bigint parameter, exact (a Date would keep milliseconds).
    case 'time':
      return (e) => (e.timestampUnixNs / 1000n).toString();
    case 'source':
      return (e) => e.source;
    case 'event_type':
      return (e) => e.eventType;
    case 'severity':
      return (e) => enumName(Severity[e.severity], 'SEVERITY_', e.severity);
    case 'outcome':
      return (e) => enumName(Outcome[e.outcome], 'OUTCOME_', e.outcome);
    case 'metadata':
      return (e) => JSON.stringify(e.metadata);
    case 'payload':
      return (e) => Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.length);
    case 'payload_json':
      return (e) => {
        if (e.metadata[PAYLOAD_FORMAT] !== PAYLOAD_FORMAT_JSON) return null;
        try {
          return utf8.decode(e.payload);
        } catch {
          return null; // not UTF-8, so not JSON: the bytes are still in `payload`
        }
      };
  }
}

function enumName(name: string | undefined, prefix: string, value: number): string {
  return name === undefined ? String(value) : name.startsWith(prefix) ? name.slice(prefix.length) : name;
}
