// The bench pipeline with a chain of five middleware in front of the counting emitter, for
// `npm run bench:middleware`: every event passes every step (the load is chosen so that none is
// refused), so the figure is the cost of running the chain, not of dropping events.
import { filter, hub, JsonIngestor, PassthroughIngestor, rateLimiter, router, transform, validator } from '../src/index.js';
import { InMemoryEmitter } from '../src/testing/index.js';

export default hub()
  .ingestor(new JsonIngestor())
  .ingestor(new PassthroughIngestor())
  .middleware(validator({ requiredEventType: true, requiredMetadata: ['cluster'], maxPayloadBytes: 64 * 1024 }))
  .middleware(filter((e) => e.eventType !== 'debug.noise'))
  .middleware(
    rateLimiter({ global: { rate: 10_000_000, burst: 10_000_000 }, perKey: { key: 'source', rate: 10_000_000, burst: 10_000_000 } }),
  )
  .middleware(
    transform((e) => {
      e.metadata['gateway'] = 'bench';
      return e;
    }),
  )
  .middleware(router({ rules: [{ eventTypePrefix: 'bench.', to: ['memory'] }] }))
  .emitter(new InMemoryEmitter({ name: 'memory', maxRetained: 0 }));
