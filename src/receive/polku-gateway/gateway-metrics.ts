import { Counter, Gauge, type Registry } from 'prom-client';

/** Metrics of the polku.v1.Gateway receiver. */
export class GatewayReceiverMetrics {
  readonly activeStreams: Gauge;
  /** StreamEvents calls not being read: the agent is not reading its Acks, or a batch is waiting. */
  readonly pausedStreams: Gauge;
  /** Batches handed to the hub whose Ack could not be sent: their stream ended while they waited. */
  readonly unansweredBatches: Counter;

  constructor(registry: Registry) {
    this.activeStreams = new Gauge({
      name: 'polku_grpc_active_streams',
      help: 'Open StreamEvents calls',
      registers: [registry],
    });
    this.pausedStreams = new Gauge({
      name: 'polku_grpc_paused_streams',
      help: 'StreamEvents calls the gateway has stopped reading (backpressure: Acks unread or a batch waiting)',
      registers: [registry],
    });
    this.unansweredBatches = new Counter({
      name: 'polku_grpc_unanswered_batches_total',
      help: 'StreamEvents batches whose Ack could not be sent because the stream ended while they waited (durable mode: several wait at once); the agent sends them again',
      registers: [registry],
    });
  }
}
