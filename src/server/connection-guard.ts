import { createServer, type Server, type Socket } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from '../clock.js';
import { polkuError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** The gRPC port's connection budget (POLKU_MAX_CONNECTIONS and its neighbours). */
export interface ConnectionLimits {
  /** Most connections open at once; a connection beyond it sheds an older one or is refused. */
  maxConnections: number;
  /** A connection that has not sent the 24-byte HTTP/2 client preface (or a TLS hello) by then is closed. */
  handshakeTimeoutMs: number;
  /** A connection from which nothing has been read for this long is closed (0: never). */
  idleTimeoutMs: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls open at once on one connection. */
  maxStreamsPerConnection: number;
}

/**
 * Sized for the chart (160 MB heap, 320 MiB memory limit): a gateway serves the agents of one node,
 * a handful of connections; a thousand leaves room for plugins and reconnect storms while an open
 * HTTP/2 session costs well under 100 KiB.
 */
export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  maxConnections: 1000,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxStreamsPerConnection: 100,
});

/** Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`). */
export const HTTP2_PREFACE_BYTES = 24;
/** How often activity is sampled (bytes read) for the idle timeout and for shedding. */
const SWEEP_INTERVAL_MS = 1_000;
/** At the cap, an open connection is shed only when nothing was read from it for this long. */
const SHED_IDLE_AFTER_MS = 30_000;

/** Why a connection was closed by the guard (the label of polku_grpc_connections_shed_total). */
export type ShedReason = 'handshake_timeout' | 'idle_timeout' | 'capacity_pre_handshake' | 'capacity_idle' | 'capacity_refused';
const SHED_REASONS: readonly ShedReason[] = [
  'handshake_timeout',
  'idle_timeout',
  'capacity_pre_handshake',
  'capacity_idle',
  'capacity_refused',
];

export interface ConnectionGuardOptions {
  limits: ConnectionLimits;
  /** Receives each accepted connection (grpc-js's connection injector). */
  onConnection: (socket: Socket) => void;
  registry: Registry;
  logger: Logger;
  clock?: Clock;
  timers?: Timers;
}

interface Tracked {
  readonly socket: Socket;
  handshake: TimerHandle | null;
  lastBytesRead: number;
  lastActiveMs: number;
}

/**
 * Owns the gRPC port's listener: accepts, counts and times connections before grpc-js sees them.
 * A connection that sends no preface in time is closed; one silent for the idle timeout is closed;
 * at the cap the oldest connection still without its preface is shed first, then the one idle the
 * longest, and only when every connection is busy is the newcomer refused. Activity is sampled
 * from `socket.bytesRead`, which counts what the HTTP/2 session reads, without touching the data.
 */
export class ConnectionGuard {
  private readonly server: Server;
  /** In accept order: the first entry is the oldest connection. */
  private readonly open = new Map<Socket, Tracked>();
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly log: Logger;
  private readonly openGauge: Gauge;
  private readonly shed: Counter<'reason'>;
  private sweep: TimerHandle | null = null;
  private closing = false;

  constructor(private readonly o: ConnectionGuardOptions) {
    this.clock = o.clock ?? systemClock;
    this.timers = o.timers ?? systemTimers;
    this.log = o.logger.child({ component: 'connections' });
    this.openGauge = new Gauge({
      name: 'polku_grpc_connections_open',
      help: 'TCP connections open on the gRPC port',
      registers: [o.registry],
      collect: () => this.openGauge.set(this.open.size),
    });
    this.shed = new Counter({
      name: 'polku_grpc_connections_shed_total',
      help: 'Connections the gRPC port closed to stay within its budget, by reason',
      labelNames: ['reason'],
      registers: [o.registry],
    });
    for (const reason of SHED_REASONS) this.shed.inc({ reason }, 0);
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Connections open now. */
  get size(): number {
    return this.open.size;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(polkuError('POLKU_ERR_LISTEN', `gRPC server could not listen on ${host}:${port}: ${err.message}`, err));
      this.server.once('error', onError);
      this.server.listen({ host, port, backlog: 511 }, () => {
        this.server.removeListener('error', onError);
        this.scheduleSweep();
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /** Stops accepting. Connections already open are left to their HTTP/2 sessions' shutdown. */
  stopAccepting(): Promise<void> {
    this.closing = true;
    if (this.sweep !== null) this.timers.clearTimeout(this.sweep);
    this.sweep = null;
    return new Promise((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
  }

  /** Closes whatever is still open (after the gRPC server's grace period). */
  destroyAll(): void {
    for (const t of this.open.values()) t.socket.destroy();
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.open.size >= this.o.limits.maxConnections && !this.makeRoom()) {
      this.shed.inc({ reason: 'capacity_refused' });
      socket.destroy();
      return;
    }
    const tracked: Tracked = { socket, handshake: null, lastBytesRead: 0, lastActiveMs: this.clock.monotonicMs() };
    tracked.handshake = this.timers.setTimeout(() => {
      tracked.handshake = null;
      if (socket.bytesRead < HTTP2_PREFACE_BYTES) this.drop(tracked, 'handshake_timeout');
    }, this.o.limits.handshakeTimeoutMs);
    this.open.set(socket, tracked);
    socket.once('close', () => this.forget(tracked));
    // Errors (resets) end in 'close'; the HTTP/2 session logs its own.
    socket.on('error', () => undefined);
    this.o.onConnection(socket);
  }

  /** At the cap: sheds the oldest pre-preface connection, else the longest idle one. */
  private makeRoom(): boolean {
    let idlest: Tracked | null = null;
    for (const t of this.open.values()) {
      if (t.socket.bytesRead < HTTP2_PREFACE_BYTES) {
        this.drop(t, 'capacity_pre_handshake');
        return true;
      }
      if (idlest === null || t.lastActiveMs < idlest.lastActiveMs) idlest = t;
    }
    if (idlest !== null && this.clock.monotonicMs() - idlest.lastActiveMs >= SHED_IDLE_AFTER_MS) {
      this.drop(idlest, 'capacity_idle');
      return true;
    }
    return false;
  }

  private drop(t: Tracked, reason: ShedReason): void {
    if (!this.open.has(t.socket)) return;
    this.shed.inc({ reason });
    this.log.debug({ reason, peer: { address: t.socket.remoteAddress, port: t.socket.remotePort } }, 'connection closed by budget');
    this.forget(t);
    t.socket.destroy();
  }

  private forget(t: Tracked): void {
    if (!this.open.delete(t.socket)) return;
    if (t.handshake !== null) this.timers.clearTimeout(t.handshake);
    t.handshake = null;
  }

  private scheduleSweep(): void {
    if (this.closing) return;
    this.sweep = this.timers.setTimeout(() => {
      this.sweepIdle();
      this.scheduleSweep();
    }, SWEEP_INTERVAL_MS);
  }

  /** Notes which connections were read from since the last sweep; closes those idle too long. */
  private sweepIdle(): void {
    const now = this.clock.monotonicMs();
    const idleMs = this.o.limits.idleTimeoutMs;
    for (const t of [...this.open.values()]) {
      const read = t.socket.bytesRead;
      if (read !== t.lastBytesRead) {
        t.lastBytesRead = read;
        t.lastActiveMs = now;
      } else if (idleMs > 0 && now - t.lastActiveMs >= idleMs) {
        this.drop(t, 'idle_timeout');
      }
    }
  }
}
