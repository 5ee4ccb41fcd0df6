// The pipeline `npm run bench:sinks` runs for NATS JetStream: JetStream publish at
// POLKU_BENCH_NATS_URL on polku.{source}.{event_type} (stream BENCH binds polku.>).
import { hub, NatsEmitter, PassthroughIngestor } from '../../src/index.js';

// No delivery.batchSize: the emitter's preferredBatchSize (1,000) sets its batches.
export default hub()
  .ingestor(new PassthroughIngestor())
  .emitter(new NatsEmitter({ servers: process.env['POLKU_BENCH_NATS_URL']!, subject: 'polku.{source}.{event_type}' }))
  .buffer({ capacity: 20_000, overflow: 'block' }); // intake waits for JetStream instead of refusing
