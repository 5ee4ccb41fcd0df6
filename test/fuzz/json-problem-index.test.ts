// The JSON ingestor's problem indexes (what the HTTP front door answers each refused event's
// place in the body with): over any mix of good and bad elements, as an array or NDJSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { JsonIngestor } from '../../src/ingest/json.js';
import { fuzzRuns } from './runs.js';

test('property: events and problems together fill every element index exactly once, in order', () => {
  const element = fc.oneof(
    fc.constant('{"id":"ok"}'),
    fc.constant('{"id":5}'),
    fc.constant('7'),
    fc.constant('{"severity":"NOPE"}'),
    fc.constant('{"event_type":"t","payload":{"a":[1,2]}}'),
  );
  fc.assert(
    fc.property(fc.array(element, { minLength: 1, maxLength: 30 }), fc.boolean(), (elements, ndjson) => {
      const body = ndjson ? elements.join('\n') : `[${elements.join(',')}]`;
      const r = new JsonIngestor().ingest({ source: 's', cluster: '', format: ndjson ? 'ndjson' : 'json' }, Buffer.from(body));
      const bad = new Set(r.problems.map((p) => p.index));
      assert.equal(bad.size, r.problems.length);
      assert.equal(r.events.length + r.problems.length, elements.length);
      const expectedBad = elements.flatMap((e, i) => (e === '{"id":"ok"}' || e.startsWith('{"event_type"') ? [] : [i]));
      assert.deepEqual([...bad], expectedBad);
    }),
    { numRuns: fuzzRuns() },
  );
});
