import type { ChainableCommander, Redis } from 'ioredis';
import { loadIoredis } from './client-libraries.js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import { Outcome, Severity, type Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import { resultOfFailures } from './batch-split.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { hostPort, probeFail, probeFailure, probeOk, untilAborted } from './probe.js';
import { NameTemplate } from './name-template.js';
import { packXadd, XADD_SCRIPT } from './redis-pack.js';

export { XADD_SCRIPT } from './redis-pack.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

/** Default stream: one for everything. */
export const DEFAULT_REDIS_STREAM = 'polku:events';
/** Default `MAXLEN ~` per stream: about a million entries, trimmed by Redis in whole macro-nodes. */
export const DEFAULT_REDIS_MAX_LEN = 1_000_000;
const DEFAULT_TIMEOUT_MS = 10_000;
/** Events per EVALSHA or pipeline; a larger batch is several, all sent before the first reply is awaited. */
export const DEFAULT_REDIS_EVENTS_PER_COMMAND = 250;
/** Commands of one batch on the wire at once: the emitter's preferred batch is this many × eventsPerCommand. */
const COMMANDS_PER_BATCH = 4;

/**
 * Error prefixes Redis answers for a condition of the server, not of the entry: sending the same
 * XADD later can succeed. Anything else (WRONGTYPE: the key holds another type; ERR …: the command
 * itself is refused) is permanent for that entry.
 * - LOADING: the server is loading its data set after a restart.
 * - BUSY: a script or function is running.
 * - OOM: over `maxmemory` with a policy that cannot evict; consumers trimming or deleting free it.
 * - MASTERDOWN, READONLY, NOREPLICAS, TRYAGAIN, CLUSTERDOWN: failover and replication states.
 * - MISCONF: the last RDB save failed and `stop-writes-on-bgsave-error` holds writes.
 * - NOAUTH, WRONGPASS, NOPERM: credentials or ACLs; fixed by an operator, not by the entry, so
 *   the events wait (and in durable mode reach the dead letters after the retry budget) instead of
 *   being dropped at once.
 */
const RETRYABLE_REPLY = /^(LOADING|BUSY|OOM|MASTERDOWN|READONLY|NOREPLICAS|TRYAGAIN|CLUSTERDOWN|MISCONF|NOAUTH|WRONGPASS|NOPERM)\b/;

/** `script`: one EVALSHA running every XADD of the batch. `pipeline`: one XADD per event, pipelined. */
export type RedisBatchCommand = 'script' | 'pipeline';

const OUTCOMES = ['success', 'partial', 'retryable', 'failed'] as const;
type BatchOutcome = (typeof OUTCOMES)[number];

export interface RedisStreamEmitterOptions {
  /** Default `redis`. */
  name?: string;
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. A single server (or a proxy in
   * front of several); Redis Cluster is not supported.
   */
  url: string;
  /**
   * The stream (key) per event, a template: `{source}`, `{event_type}`, `{severity}`,
   * `{metadata.<key>}` (src/emit/name-template.ts). Default `polku:events`.
   */
  stream?: string;
  /** `XADD … MAXLEN ~ maxLen`: each stream is trimmed to about this many entries. 0: never trimmed. Default 1,000,000. */
  maxLen?: number;
  /**
   * Distinct streams the template may produce; an event whose stream would be one more goes to
   * `overflowStream` (delivered and counted, not refused). Default 1000.
   */
  maxStreams?: number;
  /** Default: the template with `_overflow` for each placeholder (`events:{source}` → `events:_overflow`). */
  overflowStream?: string;
  /** Longest wait for a batch's replies; a command unanswered by then fails retryable. Default 10 s. */
  timeoutMs?: number;
  /**
   * How a batch is sent. `script` (default): one EVALSHA whose Lua runs each event's XADD (under
   * `redis.pcall`, one result per event), about three times less client CPU per event than
   * `pipeline`: one XADD command per event in one pipeline. The entries are the same; the script
   * holds the server for the batch (about 1 ms per 1,000 events). Needs scripting (not disabled by
   * ACL or a managed service); use `pipeline` where it is.
   */
  batchCommand?: RedisBatchCommand;
  /**
   * A batch larger than this is sent as several commands (EVALSHAs or pipelines) of at most this
   * many events, all written before the first reply is awaited: Redis runs one while the next is
   * encoded and sent. On the one connection Redis runs them in the order sent, so entries keep
   * batch order. Default 250.
   */
  eventsPerCommand?: number;
}

/** Every key of {@link RedisStreamEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const REDIS_STREAM_EMITTER_OPTION_KEYS = optionKeys<RedisStreamEmitterOptions>({
  name: true,
  url: true,
  stream: true,
  maxLen: true,
  maxStreams: true,
  overflowStream: true,
  timeoutMs: true,
  batchCommand: true,
  eventsPerCommand: true,
});

/**
 * Appends each event to a Redis stream with `XADD <stream> MAXLEN ~ <maxLen> * <fields>`, a whole
 * batch in one round trip: scripts running the batch's XADDs (default) or pipelines of them
 * (`batchCommand: 'pipeline'`), `eventsPerCommand` events each, all written before the first
 * reply is awaited (Redis runs one while the next is sent; one connection keeps them in order,
 * so entries keep batch order). Entry ids are Redis's own (`*`): stream ids must grow,
 * so the event id cannot be one. Fields, in this order:
 *
 * | field | value |
 * |---|---|
 * | `id` | the event id |
 * | `time` | Unix time in nanoseconds, decimal |
 * | `source`, `event_type` | as sent |
 * | `severity`, `outcome` | enum names (`SEVERITY_ERROR`, `OUTCOME_SUCCESS`) |
 * | `metadata` | the metadata map as a JSON object |
 * | `payload` | the payload bytes as they are (binary-safe) |
 *
 * Each command's reply is the result of its event: a connection lost, a timeout or a reply the
 * server sends for its own state ({@link RETRYABLE_REPLY}) is retryable; any other error reply
 * (WRONGTYPE, ERR …) fails that event, with the server's message, and its neighbours are delivered.
 *
 * Redis Streams have no deduplication: an event sent again (a retry after a timeout whose XADD did
 * land, a durable-mode resend after a crash) is a second entry with the same `id` field. Delivery
 * is at least once; consumers that must not see a duplicate skip ids they have seen.
 *
 * Metrics: `polku_redis_emitter_batches_total{emitter,outcome}`,
 * `polku_redis_emitter_failed_events_total{emitter,retryable}`,
 * `polku_redis_emitter_overflow_events_total{emitter}`, `polku_redis_emitter_streams{emitter}`,
 * `polku_redis_emitter_batch_seconds{emitter}`.
 */
export class RedisStreamEmitter implements Emitter {
  readonly name: string;
  readonly streams: NameTemplate;
  readonly batchCommand: RedisBatchCommand;
  readonly eventsPerCommand: number;
  /** Four commands of `eventsPerCommand` (1,000 events by default): Redis runs one while the next is sent. */
  readonly preferredBatchSize: number;
  private readonly maxLen: string | null;
  private readonly client: Redis;
  /** `redis://host:port` (no password), for probe. */
  private readonly target: string;
  private clock: Clock = systemClock;
  private log: Logger | null = null;
  private metrics: RedisEmitterMetrics | null = null;
  private readonly streamOf = (e: Event): string => this.streams.nameOf(e);
  private lastError: string | null = null;
  private closed = false;

  constructor(options: RedisStreamEmitterOptions) {
    this.name = options.name ?? 'redis';
    checkOptionKeys(`RedisStreamEmitter "${this.name}"`, options, REDIS_STREAM_EMITTER_OPTION_KEYS);
    const owner = `redis emitter "${this.name}"`;
    const bad = (message: string) => polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: ${message}`);
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw bad(`url ${JSON.stringify(options.url)} is not a URL (redis://host:port or rediss://host:port)`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
      throw bad(`url must start with redis:// or rediss://, got ${url.protocol}//`);
    this.target = `${url.protocol}//${hostPort(url, 6379)}`;
    const maxLen = options.maxLen ?? DEFAULT_REDIS_MAX_LEN;
    if (!Number.isInteger(maxLen) || maxLen < 0) throw bad(`maxLen must be a whole number ≥ 0, got ${maxLen}`);
    this.maxLen = maxLen === 0 ? null : String(maxLen);
    this.batchCommand = options.batchCommand ?? 'script';
    if (this.batchCommand !== 'script' && this.batchCommand !== 'pipeline') {
      throw bad(`batchCommand must be script or pipeline, got ${String(this.batchCommand)}`);
    }
    this.eventsPerCommand = options.eventsPerCommand ?? DEFAULT_REDIS_EVENTS_PER_COMMAND;
    if (!Number.isInteger(this.eventsPerCommand) || this.eventsPerCommand <= 0) {
      throw bad(`eventsPerCommand must be a positive whole number, got ${this.eventsPerCommand}`);
    }
    this.preferredBatchSize = COMMANDS_PER_BATCH * this.eventsPerCommand;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw bad(`timeoutMs must be a positive number, got ${timeoutMs}`);
    this.streams = new NameTemplate(options.stream ?? DEFAULT_REDIS_STREAM, {
      owner: `${owner}: stream`,
      ...(options.maxStreams !== undefined ? { maxNames: options.maxStreams } : {}),
      ...(options.overflowStream !== undefined ? { overflow: options.overflowStream } : {}),
    });
    this.client = new (loadIoredis().Redis)(options.url, {
      lazyConnect: true,
      // While disconnected a command fails at once (retryable) instead of waiting in a queue of
      // ioredis's own: the delivery queue already holds the events and backs off.
      enableOfflineQueue: false,
      // A command in flight when the connection drops fails rather than being sent again on the
      // next connection: its result must reach the delivery queue, which decides on a resend.
      maxRetriesPerRequest: 0,
      commandTimeout: timeoutMs,
      connectTimeout: timeoutMs,
    });
    // EVALSHA, falling back to EVAL (which loads it) when the server does not know the script yet.
    this.client.defineCommand('polkuXadd', { lua: XADD_SCRIPT });
    // Connection errors reach each command as its reply; the client's own event only needs a listener.
    this.client.on('error', (err: Error) => this.log?.debug({ err }, 'redis connection error'));
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.log = ctx.logger.child({ component: 'redis-emitter', emitter: this.name });
    this.metrics = RedisEmitterMetrics.in(ctx.registry);
    for (const o of OUTCOMES) this.metrics.batches.labels(this.name, o).inc(0);
    this.metrics.failed.labels(this.name, 'true').inc(0);
    this.metrics.failed.labels(this.name, 'false').inc(0);
    this.metrics.overflow.labels(this.name).inc(0);
    this.metrics.streams.labels(this.name).set(0);
    this.metrics.seconds.zero({ emitter: this.name });
    // No connection yet: the first batch opens it, so building a pipeline (polku validate, tests)
    // leaves no socket or reconnect timer behind.
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (this.closed) return EmitResults.retryable(`redis emitter "${this.name}" is shut down`);
    const n = events.length;
    if (n === 0) return EmitResults.success();
    const started = this.clock.monotonicMs();
    let result: EmitResult;
    try {
      const notConnected = await this.connectOnce();
      result = notConnected !== null ? EmitResults.retryable(notConnected) : await this.send(events);
    } catch (err) {
      result = EmitResults.retryable(`redis ${this.batchCommand} failed: ${(err as Error).message}`);
    }
    const m = this.metrics;
    if (m) {
      m.seconds.labels(this.name).observe((this.clock.monotonicMs() - started) / 1000);
      m.batches.labels(this.name, result.status as BatchOutcome).inc();
      if (result.status === 'retryable') m.failed.labels(this.name, 'true').inc(n);
      else if (result.status === 'failed') m.failed.labels(this.name, 'false').inc(n);
      else if (result.status === 'partial') {
        let retryable = 0;
        for (const f of result.failures) if (f.retryable) retryable++;
        m.failed.labels(this.name, 'true').inc(retryable);
        m.failed.labels(this.name, 'false').inc(result.failures.length - retryable);
      }
      if (this.streams.overflowed > 0) {
        m.overflow.labels(this.name).inc(this.streams.overflowed);
        this.streams.overflowed = 0;
      }
      m.streams.labels(this.name).set(this.streams.size);
    }
    this.lastError = result.status === 'retryable' || result.status === 'failed' ? result.error : null;
    return result;
  }

  /**
   * Opens the connection the first time (and again after it was closed for good); null once
   * connected, else why not. Later losses are ioredis's to repair: it reconnects by itself
   * (backoff up to 2 s) while batches fail retryable.
   */
  private async connectOnce(): Promise<string | null> {
    const status = this.client.status;
    if (status !== 'wait' && status !== 'end') return null;
    try {
      await this.client.connect();
      this.log?.info('redis connected');
      return null;
    } catch (err) {
      return `redis connection failed: ${(err as Error).message}`;
    }
  }

  /** Unhealthy while not connected, or while the last batch was wholly retryable or failed; healthy before the first batch. */
  health(): EmitterHealth {
    if (this.client.status === 'wait') return { healthy: true, message: 'connects on the first batch' };
    if (this.client.status !== 'ready') return { healthy: false, message: `redis connection is ${this.client.status}` };
    return this.lastError === null ? { healthy: true, message: 'ok' } : { healthy: false, message: this.lastError };
  }

  /**
   * Connects and sends PING; in `script` mode also SCRIPT LOAD of the batch script, so a server
   * with scripting disabled (an ACL, a managed service) fails here rather than at the first batch.
   */
  async probe(signal: AbortSignal): Promise<ProbeResult> {
    // connect() rejects with "Connection is closed."; the reason (ECONNREFUSED…) comes as an event.
    let cause: Error | undefined;
    const onError = (err: Error): void => void (cause ??= err);
    this.client.on('error', onError);
    try {
      if (this.client.status === 'wait' || this.client.status === 'end') await untilAborted(this.client.connect(), signal);
      await untilAborted(this.client.ping(), signal);
      if (this.batchCommand !== 'script') return probeOk(`${this.target} PING`);
      await untilAborted(this.client.script('LOAD', XADD_SCRIPT), signal);
      return probeOk(`${this.target} PING, batch script loaded`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message)) {
        return probeFail(
          `${this.target}: ${message}`,
          'check the user and password in url (and the ACL: scripting needs EVALSHA and SCRIPT)',
        );
      }
      if (/script/i.test(message) && this.batchCommand === 'script') {
        return probeFail(`${this.target}: ${message}`, "scripting is not allowed there: use batchCommand: 'pipeline'");
      }
      return probeFailure(this.target, cause ?? err, signal);
    } finally {
      this.client.off('error', onError);
    }
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client.status === 'wait') return;
    // QUIT waits for replies already due; disconnect() when the server is gone.
    await this.client.quit().catch(() => this.client.disconnect());
  }

  /**
   * The batch as commands of at most `eventsPerCommand` events, each written as soon as it is
   * built; then every reply is awaited. A command refused as a whole fails its own events only.
   */
  private async send(events: readonly Event[]): Promise<EmitResult> {
    const n = events.length;
    const size = this.eventsPerCommand;
    const commands: Array<Promise<EventFailure[] | null>> = [];
    for (let lo = 0; lo < n; lo += size) {
      const hi = Math.min(n, lo + size);
      commands.push(this.batchCommand === 'script' ? this.viaScript(events, lo, hi) : this.viaPipeline(events, lo, hi));
    }
    let failures: EventFailure[] | null = null;
    for (const f of await Promise.all(commands)) if (f !== null) (failures ??= []).push(...f);
    if (failures === null) return EmitResults.success();
    if (failures.some((f) => !f.retryable)) this.log?.warn({ events: failures.length, error: failures[0]!.error }, 'redis refused entries');
    return resultOfFailures(n, failures);
  }

  /** One EVALSHA for events [lo, hi), packed into one argument (redis-pack.ts); its reply lists each XADD's error or 0. */
  private async viaScript(events: readonly Event[], lo: number, hi: number): Promise<EventFailure[] | null> {
    const n = hi - lo;
    const { keys, data } = packXadd(events, lo, hi, this.streamOf);
    const args = new Array<string | Buffer | number>(keys.length + 4);
    args[0] = keys.length;
    for (let i = 0; i < keys.length; i++) args[1 + i] = keys[i]!;
    args[keys.length + 1] = this.maxLen ?? '';
    args[keys.length + 2] = n;
    args[keys.length + 3] = data;
    let reply: unknown;
    try {
      reply = await (this.client as unknown as ScriptClient).polkuXadd(...args);
    } catch (err) {
      // The whole command was refused (LOADING, BUSY, a lost connection, NOSCRIPT with scripting off…): its events alike.
      const e = err as Error;
      return failuresOf(lo, n, () => ({ message: `redis XADD script: ${e.message}`, retryable: redisRetryable(e) }));
    }
    if (!Array.isArray(reply) || reply.length !== n) {
      const answered = Array.isArray(reply) ? reply.length : typeof reply;
      return failuresOf(lo, n, () => ({ message: `redis XADD script answered ${answered} for ${n} events`, retryable: true }));
    }
    const replies: unknown[] = reply;
    return failuresOf(lo, n, (i) => {
      const r = replies[i];
      if (r === 0) return null;
      const message = String(r);
      return { message: `redis XADD: ${message}`, retryable: RETRYABLE_REPLY.test(message) };
    });
  }

  /** One pipeline of XADDs for events [lo, hi): one reply per command, in order. */
  private async viaPipeline(events: readonly Event[], lo: number, hi: number): Promise<EventFailure[] | null> {
    const n = hi - lo;
    const pipeline = this.client.pipeline();
    for (let i = lo; i < hi; i++) this.append(pipeline, events[i]!);
    let replies: Array<[Error | null, unknown]> | null;
    try {
      replies = await pipeline.exec();
    } catch (err) {
      const e = err as Error;
      return failuresOf(lo, n, () => ({ message: `redis pipeline: ${e.message}`, retryable: redisRetryable(e) }));
    }
    if (replies === null || replies.length !== n) {
      const answered = replies?.length ?? 'nothing';
      return failuresOf(lo, n, () => ({ message: `redis pipeline answered ${answered} replies for ${n} commands`, retryable: true }));
    }
    const got = replies;
    return failuresOf(lo, n, (i) => {
      const err = got[i]![0];
      return err === null ? null : { message: `redis XADD: ${err.message}`, retryable: redisRetryable(err) };
    });
  }

  private append(pipeline: ChainableCommander, e: Event): void {
    const stream = this.streams.nameOf(e);
    const payload = Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength);
    const severity = Severity[e.severity] ?? String(e.severity);
    const outcome = Outcome[e.outcome] ?? String(e.outcome);
    const time = e.timestampUnixNs.toString();
    const metadata = JSON.stringify(e.metadata);
    if (this.maxLen === null) {
      pipeline.xadd(
        stream,
        '*',
        'id',
        e.id,
        'time',
        time,
        'source',
        e.source,
        'event_type',
        e.eventType,
        'severity',
        severity,
        'outcome',
        outcome,
        'metadata',
        metadata,
        'payload',
        payload,
      );
    } else {
      pipeline.xadd(
        stream,
        'MAXLEN',
        '~',
        this.maxLen,
        '*',
        'id',
        e.id,
        'time',
        time,
        'source',
        e.source,
        'event_type',
        e.eventType,
        'severity',
        severity,
        'outcome',
        outcome,
        'metadata',
        metadata,
        'payload',
        payload,
      );
    }
  }
}

/**
 * The failures of the `n` events from `lo` on, from their replies, whichever batch command sent
 * them: `errorOf(i)` is the i-th event's error (the whole message), or null when its entry was added.
 */
function failuresOf(lo: number, n: number, errorOf: (i: number) => { message: string; retryable: boolean } | null): EventFailure[] | null {
  let failures: EventFailure[] | null = null;
  for (let i = 0; i < n; i++) {
    const err = errorOf(i);
    if (err !== null) (failures ??= []).push({ index: lo + i, retryable: err.retryable, error: err.message });
  }
  return failures;
}

/**
 * Whether an XADD's error can go away by itself. A reply error (ioredis's ReplyError, `name`
 * `ReplyError`) is retryable when Redis sent it for its own state ({@link RETRYABLE_REPLY}); any
 * other error is the client's (connection closed, not writeable, command timed out): retryable.
 */
export function redisRetryable(err: Error): boolean {
  return err.name !== 'ReplyError' || RETRYABLE_REPLY.test(err.message);
}

/** The client with the script command `defineCommand` adds. */
interface ScriptClient {
  polkuXadd(...args: Array<string | Buffer | number>): Promise<unknown>;
}

/** Metrics shared by every RedisStreamEmitter of one registry (labelled by emitter). */
class RedisEmitterMetrics {
  private static readonly byRegistry = new WeakMap<Registry, RedisEmitterMetrics>();
  readonly batches: Counter<'emitter' | 'outcome'>;
  readonly failed: Counter<'emitter' | 'retryable'>;
  readonly overflow: Counter<'emitter'>;
  readonly streams: Gauge<'emitter'>;
  readonly seconds: Histogram<'emitter'>;

  static in(registry: Registry): RedisEmitterMetrics {
    let m = RedisEmitterMetrics.byRegistry.get(registry);
    if (!m) RedisEmitterMetrics.byRegistry.set(registry, (m = new RedisEmitterMetrics(registry)));
    return m;
  }

  private constructor(registry: Registry) {
    const registers = [registry];
    this.batches = new Counter({
      name: 'polku_redis_emitter_batches_total',
      help: 'XADD batches (EVALSHAs or pipelines of eventsPerCommand events each), by outcome (success, partial, retryable, failed)',
      labelNames: ['emitter', 'outcome'],
      registers,
    });
    this.failed = new Counter({
      name: 'polku_redis_emitter_failed_events_total',
      help: 'Events whose XADD failed, by whether a retry can help',
      labelNames: ['emitter', 'retryable'],
      registers,
    });
    this.overflow = new Counter({
      name: 'polku_redis_emitter_overflow_events_total',
      help: 'Events sent to the overflow stream because their own stream would pass maxStreams',
      labelNames: ['emitter'],
      registers,
    });
    this.streams = new Gauge({
      name: 'polku_redis_emitter_streams',
      help: 'Distinct streams the stream template has produced (at most maxStreams)',
      labelNames: ['emitter'],
      registers,
    });
    this.seconds = new Histogram({
      name: 'polku_redis_emitter_batch_seconds',
      help: 'Time from sending a batch to its last reply',
      labelNames: ['emitter'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }
}
