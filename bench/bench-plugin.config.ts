// The bench pipeline with an external emitter plugin (bench/plugin-sink.ts at
// POLKU_BENCH_PLUGIN_ADDR) as its only emitter: `npm run bench:plugin`.
import { ExternalEmitter, hub, PassthroughIngestor } from '../src/index.js';

/**
 * Events per Emit call: the emitter's default (DEFAULT_PLUGIN_BATCH_SIZE) unless
 * POLKU_BENCH_PLUGIN_BATCH sets its `preferredBatchSize` to compare. The pipeline's own
 * delivery.batchSize stays at its default (500); the larger of the two is what the queue takes.
 */
const batch = process.env['POLKU_BENCH_PLUGIN_BATCH'];

export default hub()
  .ingestor(new PassthroughIngestor())
  .emitter(
    new ExternalEmitter({
      name: 'plugin',
      address: process.env['POLKU_BENCH_PLUGIN_ADDR']!,
      ...(batch !== undefined ? { preferredBatchSize: Number(batch) } : {}),
    }),
  )
  .buffer({ capacity: Number(process.env['POLKU_BENCH_PLUGIN_BUFFER'] ?? 20_000), overflow: 'block' }); // intake waits for the plugin instead of refusing
