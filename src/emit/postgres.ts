// Types only: `pg` is loaded when the first batch needs the pool (loadPg), so a gateway or a
// pipeline module that imports 'polku' without writing to PostgreSQL never pays for it.
import type pg from 'pg';
import { systemClock, type Clock } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import { resultOfFailures } from './batch-split.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { PostgresEmitterMetrics, type PostgresFailureKind, type PostgresSeries } from './postgres-metrics.js';
import {
  DEFAULT_POSTGRES_COLUMNS,
  DEFAULT_POSTGRES_TABLE,
  insertPlan,
  quoteTable,
  type InsertPlan,
  type PostgresColumns,
} from './postgres-sql.js';
import { codeOf, probeFail, probeFailure, probeOk, untilAborted } from './probe.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

/** Connections a batch's statements may use at once; more only help batches above rowsPerStatement. */
const DEFAULT_POOL_SIZE = 4;
/** 500 is the delivery default batch: one statement per batch unless batches are made larger. */
const DEFAULT_ROWS_PER_STATEMENT = 500;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

export interface PostgresEmitterOptions {
  /** Default `postgres`. */
  name?: string;
  /** `postgres://user:password@host:5432/db?sslmode=…`; read it from a Secret through process.env. */
  connectionString: string;
  /** `name` or `schema.name`. Default `polku_events` (the table `polku sinks init postgres` creates). */
  table?: string;
  /** Which column each event field goes to; default: the default table's columns. `id` needs a unique index. */
  columns?: PostgresColumns;
  /** Most connections open at once. Default 4. */
  poolSize?: number;
  /** A batch larger than this is written as several statements, run at once on the pool. Default 500. */
  rowsPerStatement?: number;
  /** One statement, from sending to the answer (client side); past it the batch is retryable. Default 10 s. */
  timeoutMs?: number;
  /** Opening a connection. Default 5 s. */
  connectTimeoutMs?: number;
}

/** Every key of {@link PostgresEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const POSTGRES_EMITTER_OPTION_KEYS = optionKeys<PostgresEmitterOptions>({
  name: true,
  connectionString: true,
  table: true,
  columns: true,
  poolSize: true,
  rowsPerStatement: true,
  timeoutMs: true,
  connectTimeoutMs: true,
});

/** A statement's failure, judged once. */
interface Judged {
  kind: PostgresFailureKind;
  retryable: boolean;
  message: string;
}

/**
 * Writes each batch into a PostgreSQL table with one `INSERT … SELECT … FROM unnest(…) ON CONFLICT
 * (id) DO NOTHING` (see postgres-sql.ts), through a `pg` pool. Idempotent on the event id: a batch
 * sent again after a lost answer, or replayed from the durable log, adds no row twice.
 *
 * Failures become per-event results:
 * - connection lost or refused, timeout, server busy or shutting down, serialization/deadlock
 *   (SQLSTATE classes 08, 53, 57, 58, 40, 55P03): the whole statement is retryable.
 * - the server rejects a row (classes 22 data exception, 23 integrity other than the id conflict,
 *   54 too large): the statement is split in halves until the rejected events are found; each is
 *   `failed` with the server's message, and every other event of the batch is written.
 * - the table or a column is missing, no permission (classes 42, 28, 3D): retryable, so events
 *   wait (in durable mode, on disk) while the table is created or the mapping fixed; unhealthy.
 *
 * Metrics: `polku_postgres_batches_total{emitter,outcome}`, `polku_postgres_rows_total{emitter,result}`
 * (inserted, duplicate, rejected), `polku_postgres_failures_total{emitter,kind}` and
 * `polku_postgres_statement_seconds{emitter}`.
 */
export class PostgresEmitter implements Emitter {
  readonly name: string;
  /** `poolSize × rowsPerStatement` (2,000 by default): a batch is one statement per connection, all at once. */
  readonly preferredBatchSize: number;
  private readonly poolConfig: pg.PoolConfig;
  /** Opened by the first statement (see openPool); null until then. */
  private pool: pg.Pool | null = null;
  private opening: Promise<pg.Pool> | null = null;
  private readonly plan: InsertPlan;
  private readonly rowsPerStatement: number;
  private clock: Clock = systemClock;
  private log: Logger | null = null;
  private series: PostgresSeries | null = null;
  /** Why the last batch failed as a whole; null while the last one went through. */
  private lastError: string | null = null;
  private closed = false;
  /** For probe: where (no password) and which table. */
  private readonly where: { target: string; table: string; quoted: string };

  constructor(options: PostgresEmitterOptions) {
    this.name = options.name ?? 'postgres';
    checkOptionKeys(`PostgresEmitter "${this.name}"`, options, POSTGRES_EMITTER_OPTION_KEYS);
    const owner = `postgres emitter "${this.name}"`;
    const poolSize = positive(owner, 'poolSize', options.poolSize ?? DEFAULT_POOL_SIZE);
    this.rowsPerStatement = positive(owner, 'rowsPerStatement', options.rowsPerStatement ?? DEFAULT_ROWS_PER_STATEMENT);
    const timeoutMs = positive(owner, 'timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const connectTimeoutMs = positive(owner, 'connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.preferredBatchSize = poolSize * this.rowsPerStatement;
    if (typeof options.connectionString !== 'string' || options.connectionString === '') {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: connectionString is required`);
    }
    this.plan = insertPlan(owner, options.table ?? DEFAULT_POSTGRES_TABLE, options.columns ?? DEFAULT_POSTGRES_COLUMNS);
    const table = options.table ?? DEFAULT_POSTGRES_TABLE;
    this.where = { target: postgresTarget(options.connectionString), table, quoted: quoteTable(owner, table) };
    this.poolConfig = {
      connectionString: options.connectionString,
      max: poolSize,
      connectionTimeoutMillis: connectTimeoutMs,
      query_timeout: timeoutMs,
      application_name: `polku-${this.name}`,
      allowExitOnIdle: true,
    };
  }

  /** The pool, created (and `pg` loaded) by the first statement; a pool opens no connection before then anyway. */
  private openPool(): Promise<pg.Pool> {
    this.opening ??= loadPg().then((pgModule) => {
      const pool = new pgModule.Pool(this.poolConfig);
      // An idle connection the server closes (a restart, pg_ctl stop) reports here; without a
      // listener the process would crash. The pool drops it; the next statement opens a new one.
      pool.on('error', (err) => this.log?.warn({ err }, 'idle PostgreSQL connection lost; the pool replaces it'));
      return (this.pool = pool);
    });
    return this.opening;
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.log = ctx.logger.child({ component: 'postgres-emitter', emitter: this.name });
    this.series = PostgresEmitterMetrics.in(ctx.registry).series(this.name);
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (this.closed) return EmitResults.retryable(`postgres emitter "${this.name}" is shut down`);
    if (events.length === 0) return EmitResults.success();
    const failures: EventFailure[] = [];
    let result: EmitResult;
    try {
      const columns = this.plan.columns(events);
      const statements: Array<Promise<void>> = [];
      for (let lo = 0; lo < events.length; lo += this.rowsPerStatement) {
        statements.push(this.write(columns, lo, Math.min(events.length, lo + this.rowsPerStatement), failures));
      }
      await Promise.all(statements);
      failures.sort((a, b) => a.index - b.index);
      result = resultOfFailures(events.length, failures);
    } catch (err) {
      // Nothing above should throw; if it does, the batch is kept rather than lost.
      result = EmitResults.retryable(`postgres emitter failed: ${(err as Error).message}`);
    }
    this.series?.batch(result.status);
    this.lastError = result.status === 'retryable' || result.status === 'failed' ? result.error : null;
    return result;
  }

  /** Unhealthy, with the reason, while the last batch failed as a whole. */
  health(): EmitterHealth {
    return this.lastError === null ? { healthy: true, message: 'ok' } : { healthy: false, message: this.lastError };
  }

  /**
   * Connects and runs `SELECT 1 FROM <table> LIMIT 0`: the server, the credentials, the database
   * and the table (a missing one named, with the command that creates it), no row written.
   */
  async probe(signal: AbortSignal): Promise<ProbeResult> {
    const { target, table, quoted } = this.where;
    let client: pg.PoolClient | undefined;
    try {
      const pool = await untilAborted(this.openPool(), signal);
      client = await untilAborted(pool.connect(), signal);
      await untilAborted(client.query(`SELECT 1 FROM ${quoted} LIMIT 0`), signal);
      return probeOk(`${target} table ${table}`);
    } catch (err) {
      const code = codeOf(err);
      if (code === '42P01')
        return probeFail(`${target}: table ${table} does not exist`, 'create it: polku sinks init postgres (or set table)');
      if (code === '28P01' || code === '28000')
        return probeFail(`${target}: credentials refused (${code})`, 'check the user and password in connectionString');
      if (code === '3D000') return probeFail(`${target}: ${(err as Error).message}`, 'check the database name in connectionString');
      return probeFailure(target, err, signal);
    } finally {
      client?.release(true);
    }
  }

  /** Closes the pool; later batches are refused as retryable. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pool = this.pool ?? (this.opening ? await this.opening : null);
    await pool?.end();
  }

  /**
   * Writes rows [lo, hi) and records a failure per event not written. A rejected row splits the
   * range in halves (each half one statement) until the rejected events stand alone: log2(n)
   * extra statements per bad event, and every good neighbour gets in.
   */
  private async write(columns: unknown[][], lo: number, hi: number, failures: EventFailure[]): Promise<void> {
    const whole = lo === 0 && hi === columns[0]!.length;
    const params = whole ? columns : columns.map((c) => c.slice(lo, hi));
    const started = this.clock.monotonicMs();
    let judged: Judged;
    try {
      const pool = this.pool ?? (await this.openPool());
      const res = await pool.query({ text: this.plan.sql, values: params });
      this.series?.statement((this.clock.monotonicMs() - started) / 1000);
      const inserted = res.rowCount ?? 0;
      this.series?.rows(inserted, hi - lo - inserted, 0);
      return;
    } catch (err) {
      this.series?.statement((this.clock.monotonicMs() - started) / 1000);
      judged = judge(err);
    }
    this.series?.failure(judged.kind);
    if (judged.kind === 'rejected' && hi - lo > 1) {
      const mid = lo + Math.ceil((hi - lo) / 2);
      await this.write(columns, lo, mid, failures);
      await this.write(columns, mid, hi, failures);
      return;
    }
    if (judged.kind === 'rejected') this.series?.rows(0, 0, 1);
    else if (judged.kind === 'config')
      this.log?.error({ error: judged.message }, 'PostgreSQL refused the statement: check the table and columns');
    for (let i = lo; i < hi; i++) failures.push({ index: i, retryable: judged.retryable, error: judged.message });
  }
}

/** SQLSTATE classes (first two characters) whose errors are about one row, not the connection. */
const REJECTED_CLASSES = new Set(['22', '23', '54']);
const CONFIG_CLASSES = new Set(['42', '28', '3D', '3F']);

/** A `pg` error (a server DatabaseError with a SQLSTATE, or a socket/timeout Error) as a failure kind. */
export function judge(err: unknown): Judged {
  const e = err as { code?: unknown; message?: unknown; detail?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  const code = typeof e.code === 'string' ? e.code : '';
  const detail = typeof e.detail === 'string' && e.detail !== '' ? ` (${e.detail})` : '';
  if (/^[0-9A-Z]{5}$/.test(code)) {
    const cls = code.slice(0, 2);
    const text = `PostgreSQL ${code}: ${message}${detail}`;
    if (REJECTED_CLASSES.has(cls)) return { kind: 'rejected', retryable: false, message: text };
    if (CONFIG_CLASSES.has(cls)) return { kind: 'config', retryable: true, message: text };
    if (cls === '08') return { kind: 'connection', retryable: true, message: text };
    if (code === '57014') return { kind: 'timeout', retryable: true, message: text }; // statement_timeout / cancel
    if (cls === '53' || cls === '57' || cls === '58' || cls === '40' || code === '55P03') {
      return { kind: 'busy', retryable: true, message: text };
    }
    return { kind: 'other', retryable: true, message: text };
  }
  // No SQLSTATE: the client's own errors (refused or cut socket, query_timeout, pool wait).
  if (/timeout/i.test(message)) return { kind: 'timeout', retryable: true, message: `PostgreSQL: ${message}` };
  return { kind: 'connection', retryable: true, message: `PostgreSQL connection: ${message}${code ? ` (${code})` : ''}` };
}

/** `host:port` of a connection string, never its password. */
function postgresTarget(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `${url.hostname || 'localhost'}:${url.port || 5432}`;
  } catch {
    return 'postgres';
  }
}

function positive(owner: string, option: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: ${option} must be a positive whole number, got ${value}`);
  }
  return value;
}

/** `pg`, imported once on first use (CommonJS: its API is the default export). */
let pgLoaded: Promise<typeof pg> | null = null;
export function loadPg(): Promise<typeof pg> {
  pgLoaded ??= import('pg').then((m) => m.default);
  return pgLoaded;
}
