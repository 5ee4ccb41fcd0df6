import { Gauge, type Registry } from 'prom-client';
import type { EventBuffer } from './event-buffer.js';

/** Buffer gauges, read from the buffer when scraped (nothing on the hot path). */
export function registerBufferMetrics(registry: Registry, buffer: EventBuffer): void {
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  gauge('polku_buffer_events', 'Events held in the buffer (accepted, not yet delivered everywhere)', () => buffer.size);
  gauge('polku_buffer_capacity_events', 'Most events the buffer holds', () => buffer.capacity);
  gauge('polku_buffer_bytes', 'Approximate bytes held in the buffer', () => buffer.bytes);
  gauge('polku_buffer_capacity_bytes', 'Most bytes the buffer holds', () => buffer.maxBytes);
  gauge('polku_buffer_blocked_writers', 'Batches waiting for room under the block policy', () => buffer.blockedWriters);
}
