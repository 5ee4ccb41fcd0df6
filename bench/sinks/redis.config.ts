// The pipeline `npm run bench:sinks` runs for Redis Streams: everything to one stream at
// POLKU_BENCH_REDIS_URL, trimmed to about 200,000 entries so memory stays bounded.
import { hub, PassthroughIngestor, RedisStreamEmitter } from '../../src/index.js';

// No delivery.batchSize: the emitter's preferredBatchSize (1,000) sets its batches.
export default hub()
  .ingestor(new PassthroughIngestor())
  .emitter(new RedisStreamEmitter({ url: process.env['POLKU_BENCH_REDIS_URL']!, stream: 'bench:{source}', maxLen: 200_000 }))
  .buffer({ capacity: 20_000, overflow: 'block' }); // intake waits for Redis instead of refusing
