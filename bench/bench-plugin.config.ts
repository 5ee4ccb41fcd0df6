// The bench pipeline with an external emitter plugin (bench/plugin-sink.ts at
// POLKU_BENCH_PLUGIN_ADDR) as its only emitter: `npm run bench:plugin`.
import { ExternalEmitter, hub, PassthroughIngestor } from '../src/index.js';

export default hub()
  .ingestor(new PassthroughIngestor())
  .emitter(new ExternalEmitter({ name: 'plugin', address: process.env['POLKU_BENCH_PLUGIN_ADDR']! }))
  .buffer({ capacity: 20_000, overflow: 'block' }) // intake waits for the plugin instead of refusing
  .delivery({ batchSize: 1000 });
