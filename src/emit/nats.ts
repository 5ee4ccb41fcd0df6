import type { Msg, MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { loadNats } from './client-libraries.js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { systemClock, systemTimers, type Clock, type Timers } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import { resultOfFailures } from './batch-split.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { hostPort, probeFail, probeFailure, probeOk, untilAborted } from './probe.js';
import { eventToJson } from './event-json.js';
import { HpubWriter } from './nats-frames.js';
import { NameTemplate } from './name-template.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

/** Default subject: one per source and type. */
export const DEFAULT_NATS_SUBJECT = 'polku.events.{source}.{event_type}';
const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * The batch a NatsEmitter asks its queue for (when the pipeline's is smaller): 1,000 publishes on
 * the wire with their acks outstanding at once, the size bench/sinks measures its raw client at.
 */
export const NATS_PREFERRED_BATCH_SIZE = 1000;

const OUTCOMES = ['success', 'partial', 'retryable', 'failed'] as const;
type BatchOutcome = (typeof OUTCOMES)[number];

/** Errors of the nats.js client that say the event itself can never be published (by `name`). */
const PERMANENT_CLIENT_ERRORS = new Set(['InvalidArgumentError', 'InvalidSubjectError']);

export interface NatsEmitterOptions {
  /** Default `nats`. */
  name?: string;
  /** `nats://host:4222`, or several of one cluster. */
  servers: string | string[];
  /**
   * The subject per event, a template: `{source}`, `{event_type}`, `{severity}`,
   * `{metadata.<key>}` (src/emit/name-template.ts). Each value is one subject token: dots,
   * whitespace, `*` and `>` in it become `_`. Default `polku.events.{source}.{event_type}`.
   */
  subject?: string;
  /**
   * true (default): JetStream publish, each acknowledged by the stream bound to the subject, with
   * `Nats-Msg-Id` = the event id. false: core NATS publish, at most once.
   */
  jetstream?: boolean;
  /** Distinct subjects the template may produce; past it events go to `overflowSubject`, counted. Default 1000. */
  maxSubjects?: number;
  /** Default: the template with `_overflow` for each placeholder. */
  overflowSubject?: string;
  /** Longest wait for a JetStream ack (or, core NATS, for the flush). Default 10 s. */
  timeoutMs?: number;
  /** Credentials, when the server asks for them. */
  user?: string;
  pass?: string;
  token?: string;
}

/** Every key of {@link NatsEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const NATS_EMITTER_OPTION_KEYS = optionKeys<NatsEmitterOptions>({
  name: true,
  servers: true,
  subject: true,
  jetstream: true,
  maxSubjects: true,
  overflowSubject: true,
  timeoutMs: true,
  user: true,
  pass: true,
  token: true,
});

/**
 * Publishes each event to NATS. The message body is the event as one JSON object, the shape the
 * file and webhook emitters write ({@link eventToJson}: id, timestamp_unix_ns, source, event_type,
 * metadata, payload or payload_base64, route_to, severity, outcome); no headers but `Nats-Msg-Id`.
 *
 * JetStream (default): every event of a batch is published at once and the acks are awaited
 * together (one round trip per batch, not per event). `Nats-Msg-Id` is the event id, so a resend
 * within the stream's `duplicate_window` (default 2 minutes) is acknowledged as a duplicate and not
 * stored again: retries and durable-mode resends give exactly one message per event inside that
 * window. Per event:
 * - acked (or acked as a duplicate): delivered.
 * - no responders (no stream bound to the subject, or one electing a leader), a timeout, a closed
 *   or reconnecting connection, a JetStream error with status 503: retryable.
 * - the stream's refusal (status 400: a message over `max_msg_size`, a wrong expected stream…),
 *   a message over the server's `max_payload`: failed, with the server's message.
 *
 * Core NATS (`jetstream: false`): the batch is published and then flushed (a PING answered by the
 * server). Success means the server read the messages, nothing more: with no subscriber they are
 * gone. At most once; a connection lost before the flush makes the batch retryable, which can
 * publish some of it twice.
 *
 * Metrics: `polku_nats_emitter_batches_total{emitter,outcome}`,
 * `polku_nats_emitter_failed_events_total{emitter,retryable}`,
 * `polku_nats_emitter_duplicates_total{emitter}`, `polku_nats_emitter_overflow_events_total{emitter}`,
 * `polku_nats_emitter_subjects{emitter}`, `polku_nats_emitter_batch_seconds{emitter}`.
 */
export class NatsEmitter implements Emitter {
  readonly name: string;
  readonly preferredBatchSize = NATS_PREFERRED_BATCH_SIZE;
  readonly subjects: NameTemplate;
  readonly jetstream: boolean;
  private readonly servers: string[];
  private readonly timeoutMs: number;
  private readonly auth: { user?: string; pass?: string; token?: string };
  private nc: NatsConnection | null = null;
  /** Writes the batch's publishes as wire frames; null when the client has no protocol handler to take them (then `nc.publish`). */
  private frames: HpubWriter | null = null;
  /** Where the stream's acks come back: `<inbox>.<batch>.<index>`, one subscription for all. */
  private inbox = '';
  private batchSeq = 0;
  /** The batch whose acks are awaited; acks for any other are late and ignored. */
  private waiting: AckWait | null = null;
  private connecting: Promise<void> | null = null;
  private clock: Clock = systemClock;
  private timers: Timers = systemTimers;
  private log: Logger | null = null;
  private metrics: NatsEmitterMetrics | null = null;
  private lastError: string | null = null;
  private closed = false;
  private readonly encoder = new TextEncoder();
  /**
   * One header set for every publish: the client encodes it inside `publish` (nats-core
   * protocol.js), so setting the next event's `Nats-Msg-Id` on it afterwards is safe and saves an
   * object and a map per event.
   */
  private readonly msgId: MsgHdrs = loadNats().headers();

  constructor(options: NatsEmitterOptions) {
    this.name = options.name ?? 'nats';
    checkOptionKeys(`NatsEmitter "${this.name}"`, options, NATS_EMITTER_OPTION_KEYS);
    const owner = `nats emitter "${this.name}"`;
    const bad = (message: string) => polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: ${message}`);
    this.servers = typeof options.servers === 'string' ? [options.servers] : [...(options.servers ?? [])];
    if (this.servers.length === 0 || this.servers.some((s) => typeof s !== 'string' || s === '')) {
      throw bad('servers must name at least one server (nats://host:4222)');
    }
    this.jetstream = options.jetstream ?? true;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) throw bad(`timeoutMs must be a positive number, got ${this.timeoutMs}`);
    this.auth = {
      ...(options.user !== undefined ? { user: options.user } : {}),
      ...(options.pass !== undefined ? { pass: options.pass } : {}),
      ...(options.token !== undefined ? { token: options.token } : {}),
    };
    this.subjects = new NameTemplate(options.subject ?? DEFAULT_NATS_SUBJECT, {
      owner: `${owner}: subject`,
      token: subjectToken,
      ...(options.maxSubjects !== undefined ? { maxNames: options.maxSubjects } : {}),
      ...(options.overflowSubject !== undefined ? { overflow: options.overflowSubject } : {}),
    });
    const problem = subjectProblem(this.subjects.overflowName);
    if (problem) throw bad(`subject "${this.subjects.template}" (as "${this.subjects.overflowName}"): ${problem}`);
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.timers = ctx.timers;
    this.log = ctx.logger.child({ component: 'nats-emitter', emitter: this.name });
    this.metrics = NatsEmitterMetrics.in(ctx.registry);
    for (const o of OUTCOMES) this.metrics.batches.labels(this.name, o).inc(0);
    this.metrics.failed.labels(this.name, 'true').inc(0);
    this.metrics.failed.labels(this.name, 'false').inc(0);
    this.metrics.duplicates.labels(this.name).inc(0);
    this.metrics.overflow.labels(this.name).inc(0);
    this.metrics.subjects.labels(this.name).set(0);
    this.metrics.seconds.zero({ emitter: this.name });
    // No connection yet: the first batch opens it, so building a pipeline (polku validate, tests)
    // leaves no socket or reconnect timer behind.
  }

  /**
   * Connects in the background, waiting for the first server as long as it takes; the client then
   * reconnects by itself, for ever. Until connected every batch is retryable.
   */
  private connect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = loadNats()
      .connect({
        servers: this.servers,
        name: `polku-${this.name}`,
        waitOnFirstConnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: this.timeoutMs,
        ...this.auth,
      })
      .then(
        (nc) => {
          if (this.closed) {
            void nc.close();
            return;
          }
          this.nc = nc;
          this.frames = HpubWriter.of(nc);
          if (this.frames === null)
            this.log?.warn('this NATS client has no protocol handler to write frames to; publishing message by message');
          this.inbox = loadNats().createInbox();
          // Resubscribed by the client after a reconnect.
          nc.subscribe(`${this.inbox}.>`, { callback: (err, m) => (err ? undefined : this.onAck(m)) });
          this.log?.info({ server: nc.getServer() }, 'nats connected');
          void (async () => {
            for await (const s of nc.status()) {
              if (s.type === 'disconnect' || s.type === 'reconnect')
                this.log?.warn({ status: s.type, server: s.server }, 'nats connection');
            }
          })().catch(() => undefined);
        },
        (err: Error) => {
          this.connecting = null;
          this.lastError = `nats connection failed: ${err.message}`;
          this.log?.error({ err }, 'nats connection failed');
        },
      );
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (this.closed) return EmitResults.retryable(`nats emitter "${this.name}" is shut down`);
    const n = events.length;
    if (n === 0) return EmitResults.success();
    if (this.nc === null) {
      this.connect();
      // The first batch waits for the first connection, up to timeoutMs.
      await this.withTimeout(this.connecting!, 'connecting').catch(() => undefined);
    }
    const nc = this.nc;
    if (nc === null || nc.isClosed()) {
      return this.finish(n, EmitResults.retryable(`nats emitter "${this.name}": not connected to ${this.servers.join(', ')}`), 0);
    }
    const started = this.clock.monotonicMs();
    let result: EmitResult;
    try {
      result = this.jetstream ? await this.publishJs(nc, events) : await this.publishCore(nc, events);
    } catch (err) {
      result = EmitResults.retryable(`nats publish failed: ${(err as Error).message}`);
    }
    return this.finish(n, result, started);
  }

  /**
   * All publishes of the batch go out before the first ack is awaited. Each is a core publish with
   * `Nats-Msg-Id` and a reply subject on the emitter's one ack subscription, which is exactly what a
   * JetStream publish is on the wire; the client's own `jetstream().publish` makes a request (a
   * promise, a timer, an inbox entry) per message and measured ten times the CPU per event here.
   * The frames are written by {@link HpubWriter} into 64 KiB chunks (`nc.publish` per message
   * when the client offers no protocol handler to write them to).
   */
  private async publishJs(nc: NatsConnection, events: readonly Event[]): Promise<EmitResult> {
    const n = events.length;
    const seq = ++this.batchSeq;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const wait: AckWait = { seq, answered: new Uint8Array(n), failures: [], left: n, duplicates: 0, subjects: new Array<string>(n), done };
    this.waiting = wait;
    const prefix = `${this.inbox}.${seq}.`;
    const frames = this.frames;
    const refusal = frames?.refusal() ?? null;
    for (let i = 0; i < n; i++) {
      const e = events[i]!;
      const subject = this.subjects.nameOf(e);
      wait.subjects[i] = subject;
      if (refusal !== null) {
        this.answer(wait, i, refusal.retryable, `jetstream publish to "${subject}": ${refusal.error}`);
      } else if (frames !== null) {
        const problem = frames.publish(subject, prefix + i, e.id, JSON.stringify(eventToJson(e)));
        if (problem !== null) this.answer(wait, i, false, `jetstream publish to "${subject}": ${problem}`);
      } else {
        try {
          this.msgId.set('Nats-Msg-Id', e.id);
          nc.publish(subject, this.body(e), { reply: prefix + i, headers: this.msgId });
        } catch (err) {
          this.answer(wait, i, natsRetryable(err as Error), `jetstream publish to "${subject}": ${(err as Error).message}`);
        }
      }
    }
    frames?.flush();
    if (wait.left > 0) await this.withTimeout(finished, '').catch(() => undefined);
    this.waiting = null;
    const failures = wait.failures;
    for (let i = 0; i < n; i++) {
      if (wait.answered[i] === 0)
        failures.push({
          index: i,
          retryable: true,
          error: `jetstream publish to "${wait.subjects[i]}": no ack within ${this.timeoutMs} ms`,
        });
    }
    if (wait.duplicates > 0) this.metrics?.duplicates.labels(this.name).inc(wait.duplicates);
    if (failures.length === 0) return EmitResults.success();
    failures.sort((a, b) => a.index - b.index);
    if (failures.some((f) => !f.retryable))
      this.log?.warn({ events: failures.length, error: failures[0]!.error }, 'jetstream refused messages');
    return resultOfFailures(n, failures);
  }

  /**
   * One ack on `<inbox>.<batch>.<index>`: a PubAck (`{"stream":…,"seq":…,"duplicate":true?}`), the
   * stream's refusal (`{"error":{"code":400,"description":…}}`), or a 503 status without a body
   * when no stream is bound to the subject (no responders).
   */
  private onAck(m: Msg): void {
    const wait = this.waiting;
    if (wait === null) return;
    const subject = m.subject;
    const last = subject.lastIndexOf('.');
    const prev = subject.lastIndexOf('.', last - 1);
    if (Number(subject.slice(prev + 1, last)) !== wait.seq) return; // a late ack of an earlier batch
    const i = Number(subject.slice(last + 1));
    if (!(i >= 0 && i < wait.answered.length) || wait.answered[i] === 1) return;
    const to = wait.subjects[i];
    if (m.headers?.code === 503 || m.data.length === 0) {
      this.answer(wait, i, true, `jetstream publish to "${to}": no responders (no stream bound to the subject, or JetStream is off)`);
      return;
    }
    const text = m.string();
    // The common answer, `{"stream":"S","seq":N}` (a domain may follow), is taken without
    // JSON.parse; a duplicate (`"duplicate": true`, spelled with or without the space by server
    // versions) or anything mentioning an error takes the full parse below.
    if (text.startsWith('{"stream":') && !text.includes('"error"') && !text.includes('"duplicate"')) {
      this.answer(wait, i, null, '');
      return;
    }
    let ack: { error?: { code?: number; err_code?: number; description?: string }; duplicate?: boolean };
    try {
      ack = JSON.parse(text) as typeof ack;
    } catch {
      this.answer(wait, i, true, `jetstream publish to "${to}": an ack that is not JSON`);
      return;
    }
    if (ack.error) {
      const e = ack.error;
      this.answer(
        wait,
        i,
        e.code === 503,
        `jetstream publish to "${to}": ${e.description ?? 'refused'} (${e.code ?? '?'}, err_code ${e.err_code ?? '?'})`,
      );
      return;
    }
    if (ack.duplicate) wait.duplicates++;
    this.answer(wait, i, null, '');
  }

  /** Records event `i`'s answer (`retryable` null: delivered) and ends the wait on the last one. */
  private answer(wait: AckWait, i: number, retryable: boolean | null, error: string): void {
    wait.answered[i] = 1;
    if (retryable !== null) wait.failures.push({ index: i, retryable, error });
    if (--wait.left === 0) wait.done();
  }

  private async publishCore(nc: NatsConnection, events: readonly Event[]): Promise<EmitResult> {
    const n = events.length;
    let failures: EventFailure[] | null = null;
    for (let i = 0; i < n; i++) {
      const e = events[i]!;
      try {
        nc.publish(this.subjects.nameOf(e), this.body(e));
      } catch (err) {
        (failures ??= []).push({ index: i, retryable: natsRetryable(err as Error), error: `nats publish: ${(err as Error).message}` });
      }
    }
    // The flush is the only answer core NATS gives: the server has read what came before it.
    await this.withTimeout(nc.flush(), `nats flush took longer than ${this.timeoutMs} ms`);
    return failures === null ? EmitResults.success() : resultOfFailures(n, failures);
  }

  private withTimeout<T>(promise: Promise<T>, message: string): Promise<T> {
    let timer: ReturnType<Timers['setTimeout']> | undefined;
    return Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = this.timers.setTimeout(() => reject(new Error(message)), this.timeoutMs);
      }),
    ]).finally(() => {
      if (timer !== undefined) this.timers.clearTimeout(timer);
    });
  }

  private body(e: Event): Uint8Array {
    return this.encoder.encode(JSON.stringify(eventToJson(e)));
  }

  private finish(n: number, result: EmitResult, started: number): EmitResult {
    const m = this.metrics;
    if (m) {
      if (started > 0) m.seconds.labels(this.name).observe((this.clock.monotonicMs() - started) / 1000);
      m.batches.labels(this.name, result.status as BatchOutcome).inc();
      if (result.status === 'retryable') m.failed.labels(this.name, 'true').inc(n);
      else if (result.status === 'failed') m.failed.labels(this.name, 'false').inc(n);
      else if (result.status === 'partial') {
        let retryable = 0;
        for (const f of result.failures) if (f.retryable) retryable++;
        m.failed.labels(this.name, 'true').inc(retryable);
        m.failed.labels(this.name, 'false').inc(result.failures.length - retryable);
      }
      if (this.subjects.overflowed > 0) {
        m.overflow.labels(this.name).inc(this.subjects.overflowed);
        this.subjects.overflowed = 0;
      }
      m.subjects.labels(this.name).set(this.subjects.size);
    }
    this.lastError = result.status === 'retryable' || result.status === 'failed' ? result.error : null;
    return result;
  }

  /** Unhealthy while not connected, or while the last batch was wholly retryable or failed; healthy before the first batch. */
  health(): EmitterHealth {
    if (this.connecting === null && this.nc === null && this.lastError === null)
      return { healthy: true, message: 'connects on the first batch' };
    if (this.nc === null || this.nc.isClosed()) return { healthy: false, message: 'nats not connected' };
    return this.lastError === null ? { healthy: true, message: 'ok' } : { healthy: false, message: this.lastError };
  }

  /** Drains the connection: publishes already written reach the server before it closes. */
  /**
   * Opens a connection of its own (the emitter's connects for ever; this one tries once) and, with
   * JetStream, asks which stream covers the subjects (`$JS.API.STREAM.NAMES`, for the template's
   * overflow subject: any subject it makes has the same shape), so a missing stream is named.
   */
  async probe(signal: AbortSignal): Promise<ProbeResult> {
    const target = this.servers.map(redactServer).join(',');
    let nc: NatsConnection | undefined;
    try {
      const opening = loadNats().connect({
        servers: this.servers,
        ...this.auth,
        maxReconnectAttempts: 0,
        reconnect: false,
        name: `polku-${this.name}-probe`,
      });
      opening.then((c) => (signal.aborted ? void c.close() : undefined)).catch(() => {});
      nc = await untilAborted(opening, signal);
      if (!this.jetstream) return probeOk(`${target} (core NATS)`);
      const subject = this.subjects.overflowName;
      const reply = await untilAborted(
        nc.request('$JS.API.STREAM.NAMES', JSON.stringify({ subject }), { timeout: this.timeoutMs }),
        signal,
      );
      const answer = JSON.parse(new TextDecoder().decode(reply.data)) as { streams?: string[] | null; error?: { description?: string } };
      if (answer.error)
        return probeFail(
          `${target}: JetStream: ${answer.error.description ?? 'error'}`,
          'is JetStream enabled on the server (and for this account)?',
        );
      const stream = answer.streams?.[0];
      if (!stream)
        return probeFail(
          `${target}: no JetStream stream covers ${subject}`,
          `create one whose subjects cover "${this.subjects.template}", or set jetstream: false`,
        );
      return probeOk(`${target} stream ${stream} covers ${subject}`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/no responders|503/i.test(message))
        return probeFail(
          `${target}: JetStream does not answer`,
          'enable JetStream on the server (nats-server -js), or set jetstream: false',
        );
      if (/authorization|authentication/i.test(message)) return probeFail(`${target}: ${message}`, 'check user/pass or token');
      return probeFailure(target, err, signal);
    } finally {
      await nc?.close().catch(() => {});
    }
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const nc = this.nc;
    this.nc = null;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}

/** A server URL without its user or password. */
function redactServer(server: string): string {
  try {
    const url = new URL(server.includes('://') ? server : `nats://${server}`);
    return `${url.protocol}//${hostPort(url, 4222)}`;
  } catch {
    return server;
  }
}

/** A JetStream batch waiting for its acks. */
interface AckWait {
  readonly seq: number;
  /** 1 once event i has its answer. */
  readonly answered: Uint8Array;
  readonly failures: EventFailure[];
  left: number;
  duplicates: number;
  readonly subjects: string[];
  readonly done: () => void;
}

/**
 * Whether publishing the event again can succeed. JetStream API errors carry an HTTP-like status:
 * 503 (JetStream temporarily unavailable, insufficient resources) is retryable, any other (400:
 * the message is too large for the stream, a wrong expected stream…) is the stream refusing this
 * message. The client's own argument errors (over `max_payload`, a bad subject) are permanent;
 * everything else — no responders, timeouts, closed or draining connections — is retryable.
 */
export function natsRetryable(err: Error): boolean {
  if (err.name === 'JetStreamApiError') return (err as Error & { status?: number }).status === 503;
  return !PERMANENT_CLIENT_ERRORS.has(err.name);
}

/** One subject token from a value: no separators, wildcards, whitespace or control characters. */
export function subjectToken(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\s.*>\u0000-\u001f\u007f]/.test(value) ? value.replace(/[\s.*>\u0000-\u001f\u007f]/g, '_') : value;
}

/** Why `subject` cannot be published to, or undefined. */
function subjectProblem(subject: string): string | undefined {
  if (/\s/.test(subject)) return 'has whitespace';
  const tokens = subject.split('.');
  if (tokens.some((t) => t === '')) return 'has an empty token (a leading, trailing or double dot)';
  if (tokens.some((t) => t.includes('*') || t.includes('>'))) return 'has a wildcard (* or >): publish subjects must be literal';
  return undefined;
}

/** Metrics shared by every NatsEmitter of one registry (labelled by emitter). */
class NatsEmitterMetrics {
  private static readonly byRegistry = new WeakMap<Registry, NatsEmitterMetrics>();
  readonly batches: Counter<'emitter' | 'outcome'>;
  readonly failed: Counter<'emitter' | 'retryable'>;
  readonly duplicates: Counter<'emitter'>;
  readonly overflow: Counter<'emitter'>;
  readonly subjects: Gauge<'emitter'>;
  readonly seconds: Histogram<'emitter'>;

  static in(registry: Registry): NatsEmitterMetrics {
    let m = NatsEmitterMetrics.byRegistry.get(registry);
    if (!m) NatsEmitterMetrics.byRegistry.set(registry, (m = new NatsEmitterMetrics(registry)));
    return m;
  }

  private constructor(registry: Registry) {
    const registers = [registry];
    this.batches = new Counter({
      name: 'polku_nats_emitter_batches_total',
      help: 'Published batches, by outcome (success, partial, retryable, failed)',
      labelNames: ['emitter', 'outcome'],
      registers,
    });
    this.failed = new Counter({
      name: 'polku_nats_emitter_failed_events_total',
      help: 'Events whose publish failed, by whether a retry can help',
      labelNames: ['emitter', 'retryable'],
      registers,
    });
    this.duplicates = new Counter({
      name: 'polku_nats_emitter_duplicates_total',
      help: 'JetStream acks marked duplicate: a resend the stream had already stored (Nats-Msg-Id)',
      labelNames: ['emitter'],
      registers,
    });
    this.overflow = new Counter({
      name: 'polku_nats_emitter_overflow_events_total',
      help: 'Events sent to the overflow subject because their own subject would pass maxSubjects',
      labelNames: ['emitter'],
      registers,
    });
    this.subjects = new Gauge({
      name: 'polku_nats_emitter_subjects',
      help: 'Distinct subjects the subject template has produced (at most maxSubjects)',
      labelNames: ['emitter'],
      registers,
    });
    this.seconds = new Histogram({
      name: 'polku_nats_emitter_batch_seconds',
      help: 'Time from publishing a batch to its last ack (JetStream) or the flush (core NATS)',
      labelNames: ['emitter'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }
}
