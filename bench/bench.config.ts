// The pipeline `npm run bench` runs: passthrough (and TAPIO's ingestor, for the agent-ingest
// figure) into an in-memory emitter that only counts, so the figures measure the gateway
// (transport, intake, buffer, queues) and not a destination.
import { hub, JsonIngestor, PassthroughIngestor, TapioIngestor } from '../src/index.js';
import { InMemoryEmitter } from '../src/testing/index.js';

export default hub()
  .ingestor(new TapioIngestor())
  .ingestor(new JsonIngestor())
  .ingestor(new PassthroughIngestor())
  .emitter(new InMemoryEmitter({ name: 'memory', maxRetained: 0 }));
