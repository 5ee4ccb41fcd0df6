import { Counter, Histogram, type Registry } from 'prom-client';

/** The routes the front door knows; anything else is `other`, so the label stays bounded. */
export type HttpRoute = 'events' | 'healthz' | 'other';

/** `2xx`… from a status: five values at most. */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

/** Metrics of the HTTP front door: requests by route and status class, body bytes, latency, bad traceparents. */
export class HttpReceiverMetrics {
  private readonly requests: Counter<'route' | 'status_class'>;
  private readonly bodyBytes: Counter<'route'>;
  private readonly duration: Histogram<'route'>;
  readonly invalidTraceparent: Counter;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'polku_http_requests_total',
      help: 'HTTP front door requests answered, by route (events, healthz, other) and status class (2xx, 4xx, 5xx)',
      labelNames: ['route', 'status_class'],
      registers: [registry],
    });
    this.bodyBytes = new Counter({
      name: 'polku_http_request_body_bytes_total',
      help: 'Request body bytes read by the HTTP front door, as sent (before gzip inflation)',
      labelNames: ['route'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'polku_http_request_duration_seconds',
      help: 'HTTP front door requests: from the request line to the answer sent',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.invalidTraceparent = new Counter({
      name: 'polku_http_invalid_traceparent_total',
      help: 'Requests whose traceparent header did not follow the W3C format (ignored; the events carry no trace ids from it)',
      registers: [registry],
    });
  }

  /** One answered request. */
  record(route: HttpRoute, status: number, seconds: number): void {
    this.requests.inc({ route, status_class: statusClass(status) });
    this.duration.observe({ route }, seconds);
  }

  body(route: HttpRoute, bytes: number): void {
    this.bodyBytes.inc({ route }, bytes);
  }
}
