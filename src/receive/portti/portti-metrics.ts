import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../../clock.js';
import type { Ack } from '../../gen/polku/v1/gateway.js';
import type { Logger } from '../../observability/logger.js';

/** The `service` label: which of PORTTI's two services a series is about. */
export type PorttiServiceName = 'portti.v1.PorttiService' | 'polku.v1.PorttiService';

const shared = new WeakMap<Registry, PorttiReceiverMetrics>();

/**
 * Metrics of PORTTI's two receivers, one set per registry (both receivers register into the
 * gateway's), labelled by `service` (two values) and, for refusals, the Ack code (a fixed set).
 */
export class PorttiReceiverMetrics {
  /** Open StreamK8sEvents calls. */
  readonly activeStreams: Gauge<'service'>;
  /** StreamK8sEvents calls not being read (backpressure: Acks unread or a batch waiting). */
  readonly pausedStreams: Gauge<'service'>;
  /**
   * Events PORTTI sent that were not accepted, by code. For portti.v1, whose Ack has no error
   * list, this and the log line are the only record of why an id is missing from the Ack.
   */
  readonly refusedEvents: Counter<'service' | 'code'>;

  static of(registry: Registry): PorttiReceiverMetrics {
    let m = shared.get(registry);
    if (!m) {
      m = new PorttiReceiverMetrics(registry);
      shared.set(registry, m);
    }
    return m;
  }

  private constructor(registry: Registry) {
    this.activeStreams = new Gauge({
      name: 'polku_portti_active_streams',
      help: 'Open StreamK8sEvents calls of PORTTI, by service',
      labelNames: ['service'],
      registers: [registry],
    });
    this.pausedStreams = new Gauge({
      name: 'polku_portti_paused_streams',
      help: 'StreamK8sEvents calls the gateway has stopped reading (backpressure: Acks unread or a batch waiting), by service',
      labelNames: ['service'],
      registers: [registry],
    });
    this.refusedEvents = new Counter({
      name: 'polku_portti_refused_events_total',
      help: 'Events (or whole messages) PORTTI sent that the gateway did not accept, by service and Ack code',
      labelNames: ['service', 'code'],
      registers: [registry],
    });
  }
}

/** Shortest time between two log lines about refused PORTTI events (the first is logged at once). */
export const REFUSAL_LOG_EVERY_MS = 10_000;

/**
 * Counts every refusal in an Ack and logs them without a line per batch: the first at once, then
 * at most one line per {@link REFUSAL_LOG_EVERY_MS} with how many were refused since and the
 * latest error, so an agent sending bad events cannot flood the log.
 */
export class RefusalRecorder {
  private since = 0;
  private loggedAtMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly service: PorttiServiceName,
    private readonly metrics: PorttiReceiverMetrics,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

  record(ack: Ack): void {
    const errors = ack.errors;
    if (errors.length === 0) return;
    for (const e of errors) this.metrics.refusedEvents.inc({ service: this.service, code: e.code });
    this.since += errors.length;
    const now = this.clock.monotonicMs();
    if (now - this.loggedAtMs < REFUSAL_LOG_EVERY_MS) return;
    this.loggedAtMs = now;
    const last = errors[errors.length - 1]!;
    this.log.warn(
      {
        service: this.service,
        refused: this.since,
        accepted: ack.eventIds.length,
        error: { eventId: last.eventId, code: last.code, message: last.message },
      },
      'PORTTI events refused',
    );
    this.since = 0;
  }
}
