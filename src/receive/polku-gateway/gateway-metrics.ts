import { Gauge, type Registry } from 'prom-client';

/** Metrics of the polku.v1.Gateway receiver. */
export class GatewayReceiverMetrics {
  readonly activeStreams: Gauge;
  /** StreamEvents calls not being read: the agent is not reading its Acks, or a batch is waiting. */
  readonly pausedStreams: Gauge;

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
  }
}
