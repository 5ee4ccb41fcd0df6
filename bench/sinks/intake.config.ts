// bench:sinks' "intake" line: the bus sinks' gateway (passthrough ingest, a buffer of 20,000 that
// blocks, batches of 1,000) with an emitter that only counts, so the gateway's CPU per event is
// what intake, buffer and delivery cost on the sinks' path without a destination.
import { hub, PassthroughIngestor } from '../../src/index.js';
import { InMemoryEmitter } from '../../src/testing/index.js';

export default hub()
  .ingestor(new PassthroughIngestor())
  .emitter(new InMemoryEmitter({ name: 'memory', maxRetained: 0 }))
  .buffer({ capacity: 20_000, overflow: 'block' })
  .delivery({ batchSize: 1000 });
