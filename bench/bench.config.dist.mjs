// bench/bench.config.ts for a compiled gateway (`node bin/polku.js serve --config …`): the same
// pipeline, imported from dist/ so no TypeScript loader runs (bench/footprint.ts --only compiled).
import { hub, JsonIngestor, PassthroughIngestor, TapioIngestor } from '../dist/index.js';
import { InMemoryEmitter } from '../dist/testing/index.js';

export default hub()
  .ingestor(new TapioIngestor())
  .ingestor(new JsonIngestor())
  .ingestor(new PassthroughIngestor())
  .emitter(new InMemoryEmitter({ name: 'memory', maxRetained: 0 }));
