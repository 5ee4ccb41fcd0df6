import { Gauge, type Registry } from 'prom-client';

/** Metrics of the polku.v1.Gateway receiver. */
export class GatewayReceiverMetrics {
  readonly activeStreams: Gauge;

  constructor(registry: Registry) {
    this.activeStreams = new Gauge({
      name: 'polku_grpc_active_streams',
      help: 'Open StreamEvents calls',
      registers: [registry],
    });
  }
}
