/**
 * Load generator for the POLKU benchmark: opens N StreamEvents bidi streams to
 * --target, sends IngestBatch messages (at full speed or at --rate events/s),
 * and measures accepted events/s and write-to-Ack latency.
 *
 * It runs as its own process so that its CPU use is visible and separate from
 * the server's. It is kept cheap on purpose: every batch is encoded once, up
 * front, and sent as raw bytes through a pass-through serializer.
 *
 * Output: ONE JSON line on stdout (see LoadResult). When started with an IPC
 * channel it also tells its parent when the measured window starts and ends,
 * so the parent can sample server-side counters at the same moments.
 *
 *   node --import tsx bench/loadgen.ts --target 127.0.0.1:50051 --duration-ms 10000
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, credentials, Metadata, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { Event, Outcome, Severity } from '../src/gen/polku/v1/event.js';
import { Ack, GatewayService, IngestBatch } from '../src/gen/polku/v1/gateway.js';
import { EventBatch as TapioBatch, type RawEbpfEvent } from '../src/gen/tapio/v1/raw.js';
import type { LoadgenMessage, LoadResult } from './lib/load-result.js';
import { tapioEvent } from './lib/tapio-batch.js';
import { round3, summarizeLatency } from './lib/stats.js';

interface Options {
  target: string;
  streams: number;
  batch: number;
  eventBytes: number;
  durationMs: number;
  warmupMs: number;
  /** Target total events/s over all streams; 0 = as fast as the window allows. */
  rate: number;
  /** Max unacked batches in flight per stream. */
  window: number;
  /** Number of distinct pre-encoded batches cycled through. */
  pool: number;
  /** Multiplex all streams over one HTTP/2 connection instead of one connection per stream. */
  sharedConnection: boolean;
  /**
   * Every event sent gets an id never sent before (a counter patched into a copy of the pooled
   * batch), instead of ids repeating when the pool wraps. Durable mode needs it: it acknowledges
   * a repeated id as an idempotent resend without storing it again.
   */
  uniqueIds: boolean;
  /**
   * Send what TAPIO sends instead of native polku batches: `IngestBatch{source:"tapio",
   * raw:{format:"protobuf", data:<tapio.v1.EventBatch>}}`, events of about --event-bytes with
   * network data, built with the generated encoder (bench/run.ts's agent-ingest figure).
   */
  tapio: boolean;
  /** The batches' and events' source (a tenant may send only its own sources). */
  source: string;
  /** Sent as gRPC metadata `x-api-key` on every stream (bench/tenants.ts); none when empty. */
  apiKey: string;
}

const CONNECT_TIMEOUT_MS = 10_000;
const DRAIN_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 5_000;

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      streams: { type: 'string', default: '4' },
      batch: { type: 'string', default: '100' },
      'event-bytes': { type: 'string', default: '400' },
      'duration-ms': { type: 'string', default: '10000' },
      'warmup-ms': { type: 'string', default: '2000' },
      rate: { type: 'string', default: '0' },
      window: { type: 'string', default: '16' },
      pool: { type: 'string', default: '64' },
      'shared-connection': { type: 'boolean', default: false },
      'unique-ids': { type: 'boolean', default: false },
      tapio: { type: 'boolean', default: false },
      source: { type: 'string', default: 'bench-loadgen' },
      'api-key': { type: 'string', default: '' },
    },
    strict: true,
  });
  if (!values.target) throw new Error('--target host:port is required');
  return {
    target: values.target,
    streams: positiveInt('streams', values.streams),
    batch: positiveInt('batch', values.batch),
    eventBytes: positiveInt('event-bytes', values['event-bytes']),
    durationMs: positiveInt('duration-ms', values['duration-ms']),
    warmupMs: nonNegativeInt('warmup-ms', values['warmup-ms']),
    rate: nonNegativeInt('rate', values.rate),
    window: positiveInt('window', values.window),
    pool: positiveInt('pool', values.pool),
    sharedConnection: values['shared-connection'],
    uniqueIds: values['unique-ids'],
    tapio: values.tapio,
    source: values.source,
    apiKey: values['api-key'],
  };
}

function nonNegativeInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
  return n;
}

function positiveInt(name: string, raw: string): number {
  const n = nonNegativeInt(name, raw);
  if (n === 0) throw new Error(`--${name} must be > 0`);
  return n;
}

// ---------------------------------------------------------------------------
// Pre-encoded batch pool

/** Bytes a length-delimited field adds around `len` bytes of content (1-byte tag + varint length). */
function lengthDelimitedOverhead(len: number): number {
  let varint = 1;
  for (let v = len; v >= 0x80; v >>>= 7) varint++;
  return 1 + varint;
}

function baseEvent(id: string, timestampUnixNs: bigint, source = 'bench-loadgen'): Event {
  return {
    id,
    timestampUnixNs,
    source,
    eventType: 'bench.synthetic',
    metadata: { cluster: 'bench', namespace: 'default', pod: 'bench-loadgen-7d9f8c6b5-x2k4q' },
    payload: new Uint8Array(0),
    routeTo: [],
    severity: Severity.SEVERITY_INFO,
    outcome: Outcome.OUTCOME_SUCCESS,
  };
}

/** Payload length that brings one encoded event to roughly `eventBytes`. */
function payloadLength(eventBytes: number, sampleId: string, timestampUnixNs: bigint): number {
  const bare = Event.encode(baseEvent(sampleId, timestampUnixNs)).finish().length;
  const room = eventBytes - bare;
  return Math.max(0, room - lengthDelimitedOverhead(room));
}

/** Hex digits of the per-send counter in each id (`--unique-ids`); 2^40 sends before it wraps. */
const SEND_COUNTER_DIGITS = 10;
const SEND_COUNTER_PLACEHOLDER = '0'.repeat(SEND_COUNTER_DIGITS);

interface PooledBatch {
  bytes: Buffer;
  /** Byte offsets of each event's send-counter digits inside `bytes`. */
  counterOffsets: number[];
}

/**
 * Encodes `opts.pool` distinct batches once. Ids are unique within the pool
 * and carry a per-run tag, so two generator runs against the same gateway
 * never reuse each other's ids. They repeat when the pool wraps around unless
 * --unique-ids, which patches a send counter into a copy of each batch.
 */
function buildPool(opts: Options): PooledBatch[] {
  const runTag = randomUUID().slice(0, 8);
  const timestampUnixNs = BigInt(Date.now()) * 1_000_000n;
  const idFor = (b: number, e: number): string =>
    `${runTag}-${SEND_COUNTER_PLACEHOLDER}-${String(b).padStart(5, '0')}-${String(e).padStart(5, '0')}`;
  // One shared random payload: the gateway does not look inside it, and random
  // bytes keep any transport compression from flattering the numbers.
  const payload = randomBytes(payloadLength(opts.eventBytes, idFor(0, 0), timestampUnixNs));

  const pool: PooledBatch[] = [];
  for (let b = 0; b < opts.pool; b++) {
    let batch: IngestBatch;
    if (opts.tapio) {
      const events: RawEbpfEvent[] = [];
      for (let e = 0; e < opts.batch; e++) events.push(tapioEvent(idFor(b, e), timestampUnixNs, opts.eventBytes));
      const data = TapioBatch.encode({ events, source: 'tapio', clusterId: 'bench', nodeName: 'bench-node-1' }).finish();
      batch = { source: 'tapio', cluster: 'bench', payload: { $case: 'raw', value: { data, format: 'protobuf' } } };
    } else {
      const events: Event[] = [];
      for (let e = 0; e < opts.batch; e++) {
        events.push({ ...baseEvent(idFor(b, e), timestampUnixNs, opts.source), payload });
      }
      batch = {
        source: opts.source,
        cluster: 'bench',
        payload: { $case: 'events', value: { events } },
      };
    }
    const bytes = Buffer.from(IngestBatch.encode(batch).finish());
    const counterOffsets: number[] = [];
    let from = 0;
    for (let e = 0; e < opts.batch; e++) {
      const at = bytes.indexOf(idFor(b, e), from, 'latin1');
      if (at < 0) throw new Error(`event id ${idFor(b, e)} not found in its encoded batch`);
      counterOffsets.push(at + runTag.length + 1);
      from = at + 1;
    }
    pool.push({ bytes, counterOffsets });
  }
  return pool;
}

// ---------------------------------------------------------------------------
// Measurement

interface InFlight {
  sentAt: number;
  /** Sent inside the measured window: only these count. */
  measured: boolean;
}

type Phase = 'warmup' | 'measure' | 'drain';

class Recorder {
  phase: Phase = 'warmup';
  batchesSent = 0;
  eventsSent = 0;
  eventsAccepted = 0;
  ackErrors = 0;
  unexpectedAcks = 0;
  readonly errorCodes: Record<string, number> = {};
  readonly latenciesMs: number[] = [];
  readonly streamErrors: string[] = [];
  private windowStart = 0;
  private windowEnd = 0;
  private cpuStart: NodeJS.CpuUsage = { user: 0, system: 0 };
  private cpuUsedUs = 0;

  constructor(private readonly eventsPerBatch: number) {}

  get measuring(): boolean {
    return this.phase === 'measure';
  }

  beginMeasure(): void {
    this.phase = 'measure';
    this.windowStart = performance.now();
    this.cpuStart = process.cpuUsage();
  }

  endMeasure(): void {
    this.phase = 'drain';
    this.windowEnd = performance.now();
    const cpu = process.cpuUsage(this.cpuStart);
    this.cpuUsedUs = cpu.user + cpu.system;
  }

  onSend(measured: boolean): void {
    if (!measured) return;
    this.batchesSent++;
    this.eventsSent += this.eventsPerBatch;
  }

  onAck(entry: InFlight, ack: Ack, now: number): void {
    if (!entry.measured) return;
    this.latenciesMs.push(now - entry.sentAt);
    this.eventsAccepted += ack.eventIds.length;
    this.ackErrors += ack.errors.length;
    for (const err of ack.errors) {
      this.errorCodes[err.code] = (this.errorCodes[err.code] ?? 0) + 1;
    }
  }

  result(unackedBatches: number, batchBytes: number): LoadResult {
    const durationS = (this.windowEnd - this.windowStart) / 1000;
    return {
      batchesSent: this.batchesSent,
      eventsSent: this.eventsSent,
      eventsAccepted: this.eventsAccepted,
      ackErrors: this.ackErrors,
      errorCodes: this.errorCodes,
      batchBytes,
      durationS: round3(durationS),
      acceptedPerSec: Math.round(this.eventsAccepted / durationS),
      ackLatencyMs: summarizeLatency(this.latenciesMs),
      unackedBatches,
      loadgenCpuCores: round3(this.cpuUsedUs / 1000 / (this.windowEnd - this.windowStart)),
      streamErrors:
        this.unexpectedAcks > 0 ? [...this.streamErrors, `${this.unexpectedAcks} acks arrived with no batch in flight`] : this.streamErrors,
    };
  }
}

// ---------------------------------------------------------------------------
// One bidi stream

type AckStream = ClientDuplexStream<Buffer, Ack>;

class LoadStream {
  /** Send times of unacked batches; Acks come back in send order (see gateway.proto). */
  private readonly inflight: InFlight[] = [];
  private readonly call: AckStream;
  private readonly ended: Promise<void>;
  private sending = false;
  private blocked = false;
  /** The stream ended with an error: its unacked batches will never be acked. */
  private failed = false;
  private timer: NodeJS.Timeout | undefined;
  private cursor: number;
  /** --unique-ids: batches this stream has sent; with the stream index it makes every id new. */
  private sends = 0;
  /** Rate mode only: when the next batch is due (performance.now() clock). */
  private nextDueAt = 0;

  constructor(
    client: Client,
    private readonly pool: readonly PooledBatch[],
    private readonly opts: Options,
    private readonly recorder: Recorder,
    private readonly index: number,
  ) {
    // Streams start at different points of the pool so they do not send the same batch at once.
    this.cursor = Math.floor((index * pool.length) / opts.streams);
    const metadata = new Metadata();
    if (opts.apiKey !== '') metadata.set('x-api-key', opts.apiKey);
    this.call = client.makeBidiStreamRequest(
      GatewayService.streamEvents.path,
      (bytes: Buffer) => bytes, // already encoded: pass through
      Ack.decode,
      metadata,
    );
    this.call.on('data', (ack: Ack) => this.onAck(ack));
    this.ended = new Promise((resolve) => {
      this.call.on('status', () => resolve());
      this.call.on('error', (err: ServiceError) => {
        this.recorder.streamErrors.push(`stream ${this.index}: ${err.code} ${err.details || err.message}`);
        this.failed = true;
        this.stopSending();
        resolve();
      });
    });
  }

  /** Milliseconds between two batches of this stream under --rate; 0 when unpaced. */
  private get intervalMs(): number {
    return this.opts.rate === 0 ? 0 : (1000 * this.opts.batch * this.opts.streams) / this.opts.rate;
  }

  start(): void {
    this.sending = true;
    // Stagger paced streams across one interval so sends are spread evenly.
    this.nextDueAt = performance.now() + (this.intervalMs * this.index) / this.opts.streams;
    this.pump();
  }

  stopSending(): void {
    this.sending = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  get measuredInFlight(): number {
    return this.inflight.filter((f) => f.measured).length;
  }

  get awaitingAcks(): boolean {
    return !this.failed && this.measuredInFlight > 0;
  }

  /** Half-closes the stream and waits for the server to finish it. */
  async close(): Promise<void> {
    this.stopSending();
    this.call.end();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref());
    await Promise.race([this.ended, timeout]);
  }

  private canWrite(): boolean {
    return this.sending && !this.blocked && this.inflight.length < this.opts.window;
  }

  /** Writes as many batches as the window, the socket and (in rate mode) the schedule allow. */
  private pump(): void {
    const interval = this.intervalMs;
    if (interval === 0) {
      while (this.canWrite()) this.sendOne();
      return;
    }
    const now = performance.now();
    // After a stall, catch up by at most one window's worth instead of bursting the whole backlog.
    this.nextDueAt = Math.max(this.nextDueAt, now - interval * this.opts.window);
    while (this.canWrite() && this.nextDueAt <= now) {
      this.sendOne();
      this.nextDueAt += interval;
    }
    this.schedule(now);
  }

  /** Rate mode: wake up when the next batch is due (acks and 'drain' also wake us). */
  private schedule(now: number): void {
    if (!this.canWrite() || this.timer !== undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(0, this.nextDueAt - now),
    );
  }

  private sendOne(): void {
    const pooled = this.pool[this.cursor]!;
    this.cursor = (this.cursor + 1) % this.pool.length;
    const bytes = this.opts.uniqueIds ? this.withFreshIds(pooled) : pooled.bytes;
    const measured = this.recorder.measuring;
    this.inflight.push({ sentAt: performance.now(), measured });
    this.recorder.onSend(measured);
    if (!this.call.write(bytes)) {
      // The transport buffer is full: wait for it to empty before writing again.
      this.blocked = true;
      this.call.once('drain', () => {
        this.blocked = false;
        if (this.sending) this.pump();
      });
    }
  }

  /** A copy of the batch whose ids carry a counter no other send of this run used. */
  private withFreshIds(pooled: PooledBatch): Buffer {
    const counter = (this.sends++ * this.opts.streams + this.index).toString(16).padStart(SEND_COUNTER_DIGITS, '0');
    const out = Buffer.from(pooled.bytes);
    for (const at of pooled.counterOffsets) out.write(counter, at, SEND_COUNTER_DIGITS, 'latin1');
    return out;
  }

  private onAck(ack: Ack): void {
    const entry = this.inflight.shift();
    if (entry === undefined) {
      this.recorder.unexpectedAcks++;
      return;
    }
    this.recorder.onAck(entry, ack, performance.now());
    if (this.sending) this.pump();
  }
}

// ---------------------------------------------------------------------------

function notifyParent(msg: LoadgenMessage): void {
  process.send?.(msg);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition() && performance.now() < deadline) await sleep(5);
}

function connect(client: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + CONNECT_TIMEOUT_MS, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * One Client per stream, each with its own subchannel pool, gives each stream
 * its own TCP connection, like independent agents. grpc-js would otherwise
 * share one connection between clients with the same target and options.
 */
function makeClients(opts: Options): Client[] {
  const channelOptions = { 'grpc.use_local_subchannel_pool': 1 };
  const count = opts.sharedConnection ? 1 : opts.streams;
  return Array.from({ length: count }, () => new Client(opts.target, credentials.createInsecure(), channelOptions));
}

/** If the parent (bench/run.ts) dies, do not keep loading a server nobody measures. */
function exitWithParent(): () => void {
  const onDisconnect = (): void => process.exit(1);
  process.on('disconnect', onDisconnect);
  return () => process.off('disconnect', onDisconnect);
}

async function main(): Promise<void> {
  const stopWatchingParent = exitWithParent();
  const opts = readOptions();
  const pool = buildPool(opts);
  const clients = makeClients(opts);
  await Promise.all(clients.map(connect));

  const recorder = new Recorder(opts.batch);
  const streams = Array.from({ length: opts.streams }, (_, i) => new LoadStream(clients[i % clients.length]!, pool, opts, recorder, i));
  for (const s of streams) s.start();

  await sleep(opts.warmupMs);
  recorder.beginMeasure();
  notifyParent({ phase: 'measure-start' });

  await sleep(opts.durationMs);
  recorder.endMeasure();
  notifyParent({ phase: 'measure-end' });
  for (const s of streams) s.stopSending();

  // Let the batches sent inside the window be acked so they count.
  await waitUntil(() => !streams.some((s) => s.awaitingAcks), DRAIN_TIMEOUT_MS);
  const batchBytes = Math.round(pool.reduce((n, b) => n + b.bytes.length, 0) / pool.length);
  const result = recorder.result(
    streams.reduce((n, s) => n + s.measuredInFlight, 0),
    batchBytes,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);

  await Promise.all(streams.map((s) => s.close()));
  for (const c of clients) c.close();
  stopWatchingParent();
  if (process.connected) process.disconnect();
  process.exitCode = result.streamErrors.length > 0 ? 2 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`loadgen: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
