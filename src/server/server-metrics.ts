import { Gauge, type Registry } from 'prom-client';

/** Transport-edge metrics. */
export class ServerMetrics {
  readonly activeStreams: Gauge;

  constructor(registry: Registry) {
    this.activeStreams = new Gauge({
      name: 'polku_grpc_active_streams',
      help: 'Open StreamEvents calls',
      registers: [registry],
    });
  }
}
