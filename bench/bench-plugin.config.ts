// The bench pipeline with an external emitter plugin (bench/plugin-sink.ts at
// POLKU_BENCH_PLUGIN_ADDR) as its only emitter: `npm run bench:plugin`.
import { ExternalEmitter, hub, PassthroughIngestor } from '../src/index.js';

/** Events per delivery batch (one Emit call each); POLKU_BENCH_PLUGIN_BATCH overrides it to compare. */
const batchSize = Number(process.env['POLKU_BENCH_PLUGIN_BATCH'] ?? 1000);

export default hub()
  .ingestor(new PassthroughIngestor())
  .emitter(new ExternalEmitter({ name: 'plugin', address: process.env['POLKU_BENCH_PLUGIN_ADDR']! }))
  .buffer({ capacity: Number(process.env['POLKU_BENCH_PLUGIN_BUFFER'] ?? 20_000), overflow: 'block' }) // intake waits for the plugin instead of refusing
  .delivery({ batchSize });
