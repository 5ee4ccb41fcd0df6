import { Metadata, status as GrpcStatus, type ClientDuplexStream, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { Clock, TimerHandle, Timers } from '../clock.js';
import { GatewayClient, type Ack, type IngestBatch } from '../gen/polku/v1/gateway.js';
import type { Logger } from '../observability/logger.js';
import { backoffDelay } from '../resilience/backoff.js';
import { PLAINTEXT_DIAL, type DialCredentials } from '../security/tls.js';
import type { ProbeResult } from './emitter.js';
import { grpcProbe } from './probe.js';

/** `idle`: not contacted yet. `up`: the last contact worked. `down`: it failed; a reconnect is scheduled. */
export type EndpointState = 'idle' | 'up' | 'down';

/** How one batch written to an endpoint ended. */
export type SendOutcome = { readonly kind: 'ack'; readonly ack: Ack } | { readonly kind: 'broken'; readonly error: string };

/** A batch written to a stream and waiting for its Ack. */
export interface PendingSend {
  readonly outcome: Promise<SendOutcome>;
  /** Internal: settles `outcome`. */
  readonly settle: (outcome: SendOutcome) => void;
}

/** Services an endpoint takes from its emitter; swapped in place when the hub calls `init`. */
export interface EndpointRuntime {
  clock: Clock;
  timers: Timers;
  logger: Logger;
  /** Called after every state change (metrics gauge). */
  onStateChange(endpoint: GrpcEndpoint): void;
}

export interface GrpcEndpointOptions {
  /** The address as configured: the label in metrics and messages. */
  address: string;
  /** `host:port` for grpc-js. */
  target: string;
  /** Plaintext or TLS (src/security/tls.ts); default plaintext. */
  dial?: DialCredentials;
  reconnect: { initialMs: number; maxMs: number };
  /** Deadline of a reconnect probe. */
  probeTimeoutMs: number;
  runtime: EndpointRuntime;
}

/** Probe failures that mean "not reachable"; any other answer means a server is listening. */
const UNREACHABLE = new Set<GrpcStatus>([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED]);

/**
 * One downstream gateway: a grpc-js client, one long-lived StreamEvents call opened on first use,
 * and the batches written to it awaiting their Acks. Acks answer batches in order (the gateway
 * guarantees it), so they are matched first in, first out.
 *
 * When the stream errors or ends, every batch awaiting an Ack is settled `broken` and the
 * endpoint goes `down`. After an exponential backoff (injected timers) a unary Health call probes
 * it; an answer brings it back `up` and the next batch opens a new stream.
 */
export class GrpcEndpoint {
  readonly address: string;
  private readonly o: GrpcEndpointOptions;
  private readonly client: GatewayClient;
  private stateValue: EndpointState = 'idle';
  private stream: ClientDuplexStream<IngestBatch, Ack> | null = null;
  private awaiting: Array<(outcome: SendOutcome) => void> = [];
  private loadValue = 0;
  private lastBuffer = '';
  private lastError = '';
  private failures = 0;
  private reconnectTimer: TimerHandle | null = null;
  private reconnectDueMs = 0;
  private backoffMs = 0;
  private probe: ClientUnaryCall | null = null;
  private closed = false;

  constructor(options: GrpcEndpointOptions) {
    this.o = options;
    this.address = options.address;
    const dial = options.dial ?? PLAINTEXT_DIAL;
    this.client = new GatewayClient(options.target, dial.credentials, {
      ...dial.channelOptions,
      // grpc-js reconnects its channel with its own backoff (1 s to 120 s by default); keep it in
      // step with ours so a probe is not refused by a channel still waiting out its own backoff.
      'grpc.initial_reconnect_backoff_ms': options.reconnect.initialMs,
      'grpc.max_reconnect_backoff_ms': options.reconnect.maxMs,
    });
  }

  get state(): EndpointState {
    return this.stateValue;
  }

  /** `buffer_size / buffer_capacity` from the last Ack; 0 until one arrives. */
  get load(): number {
    return this.loadValue;
  }

  /** Batches written and not yet answered. */
  get awaitingAcks(): number {
    return this.awaiting.length;
  }

  /** While down: milliseconds until the next reconnect probe (the backoff itself while one runs). */
  get reconnectInMs(): number {
    if (this.reconnectTimer === null) return this.backoffMs;
    return Math.max(0, Math.ceil(this.reconnectDueMs - this.o.runtime.clock.monotonicMs()));
  }

  /** One line for the emitter's health message. */
  describe(): string {
    const buffer = this.lastBuffer ? `buffer ${this.lastBuffer}, ` : '';
    switch (this.stateValue) {
      case 'idle':
        return `${this.address} idle (not contacted yet)`;
      case 'up':
        return `${this.address} up (${buffer}${this.awaiting.length} awaiting Ack)`;
      case 'down':
        return `${this.address} down: ${this.lastError} (${this.reconnectTimer ? `reconnect in ${this.reconnectInMs} ms` : 'probing'})`;
    }
  }

  /** For polku validate --probe: the channel connects and Health answers; the state is left alone. */
  dial(signal: AbortSignal): Promise<ProbeResult> {
    return grpcProbe(this.client, this.address, signal, (done) => this.client.health({}, new Metadata(), {}, (err) => done(err)));
  }

  /**
   * Contacts an endpoint not contacted yet with a Health call (an eager emitter, at start): an
   * answer makes it `up`, no answer `down` with reconnects on the usual backoff. The first batch
   * does not wait for it.
   */
  connect(): void {
    if (this.closed || this.stateValue !== 'idle' || this.probe) return;
    const deadline = Date.now() + this.o.probeTimeoutMs;
    this.probe = this.client.health({}, new Metadata(), { deadline }, (err) => {
      this.probe = null;
      if (this.closed || this.stateValue !== 'idle') return;
      if (err && UNREACHABLE.has(err.code)) this.markDown(`not reachable at start: ${GrpcStatus[err.code]}: ${err.details}`);
      else {
        this.o.runtime.logger.info({ endpoint: this.address }, 'grpc endpoint reachable');
        this.markUp();
      }
    });
  }

  /** Writes `batch` on the stream (opening it if needed); the outcome settles on its Ack or a failure. */
  send(batch: IngestBatch): PendingSend {
    let settle!: (outcome: SendOutcome) => void;
    const outcome = new Promise<SendOutcome>((resolve) => (settle = resolve));
    if (this.closed) {
      settle({ kind: 'broken', error: 'emitter is shut down' });
      return { outcome, settle };
    }
    const stream = this.open();
    this.awaiting.push(settle);
    try {
      stream.write(batch);
    } catch (err) {
      this.fail(stream, `write failed: ${(err as Error).message}`);
    }
    return { outcome, settle };
  }

  /**
   * Gives up on a batch that got no Ack in time. Its stream is reset: a late Ack would otherwise
   * be matched to the next batch.
   */
  abandon(pending: PendingSend, reason: string): void {
    if (this.stream && this.awaiting.includes(pending.settle)) this.fail(this.stream, reason);
  }

  /** Ends the stream gracefully (or cancels it if batches still await Acks) and closes the client. */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    this.clearReconnect();
    this.probe?.cancel();
    const stream = this.stream;
    if (stream) {
      if (this.awaiting.length > 0) {
        this.fail(stream, 'emitter is shutting down');
      } else {
        const { timers } = this.o.runtime;
        await new Promise<void>((resolve) => {
          const timer = timers.setTimeout(resolve, graceMs);
          stream.once('status', () => {
            timers.clearTimeout(timer);
            resolve();
          });
          stream.end();
        });
        this.fail(stream, 'emitter is shut down');
      }
    }
    this.client.close();
  }

  private open(): ClientDuplexStream<IngestBatch, Ack> {
    if (this.stream) return this.stream;
    const stream = this.client.streamEvents();
    stream.on('data', (ack: Ack) => this.onAck(stream, ack));
    // 'error' precedes 'status' on a failed call; both may fire, fail() acts once per stream.
    stream.on('error', (err: ServiceError) => this.fail(stream, `stream failed: ${GrpcStatus[err.code]}: ${err.details}`));
    stream.on('status', () => this.fail(stream, 'stream ended by the server'));
    this.stream = stream;
    return stream;
  }

  private onAck(stream: ClientDuplexStream<IngestBatch, Ack>, ack: Ack): void {
    if (stream !== this.stream) return;
    const settle = this.awaiting.shift();
    if (!settle) {
      this.fail(stream, 'received an Ack for no batch');
      return;
    }
    const capacity = Number(ack.bufferCapacity);
    this.loadValue = capacity > 0 ? Number(ack.bufferSize) / capacity : 0;
    this.lastBuffer = `${ack.bufferSize}/${ack.bufferCapacity}`;
    if (this.stateValue !== 'up') this.markUp();
    settle({ kind: 'ack', ack });
  }

  /** Settles every awaiting batch as broken and schedules a reconnect; once per stream. */
  private fail(stream: ClientDuplexStream<IngestBatch, Ack>, reason: string): void {
    if (stream !== this.stream) return;
    this.stream = null;
    stream.cancel(); // a no-op on a call that already ended
    const broken: SendOutcome = { kind: 'broken', error: reason };
    const awaiting = this.awaiting;
    this.awaiting = [];
    for (const settle of awaiting) settle(broken);
    if (!this.closed) this.markDown(reason);
  }

  private markUp(): void {
    if (this.stateValue === 'down') this.o.runtime.logger.info({ endpoint: this.address }, 'grpc endpoint reconnected');
    this.stateValue = 'up';
    this.failures = 0;
    this.lastError = '';
    this.o.runtime.onStateChange(this);
  }

  private markDown(reason: string): void {
    if (this.stateValue !== 'down') {
      this.o.runtime.logger.warn({ endpoint: this.address, reason }, 'grpc endpoint down; reconnecting with backoff');
    }
    this.stateValue = 'down';
    this.lastError = reason;
    this.failures++;
    this.o.runtime.onStateChange(this);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.clearReconnect();
    const { initialMs, maxMs } = this.o.reconnect;
    const delay = backoffDelay(this.failures, { initialMs, maxMs });
    const { timers, clock } = this.o.runtime;
    this.backoffMs = delay;
    this.reconnectDueMs = clock.monotonicMs() + delay;
    this.reconnectTimer = timers.setTimeout(() => {
      this.reconnectTimer = null;
      this.probeNow();
    }, delay);
  }

  private probeNow(): void {
    if (this.closed || this.stateValue !== 'down') return;
    // grpc-js deadlines are wall-clock dates, whatever clock the emitter was given.
    const deadline = Date.now() + this.o.probeTimeoutMs;
    this.probe = this.client.health({}, new Metadata(), { deadline }, (err) => {
      this.probe = null;
      if (this.closed || this.stateValue !== 'down') return;
      if (err && UNREACHABLE.has(err.code)) this.markDown(`reconnect failed: ${GrpcStatus[err.code]}: ${err.details}`);
      else this.markUp();
    });
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) {
      this.o.runtime.timers.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
  }
}
