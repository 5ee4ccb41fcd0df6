// The HTTP front door's pure parts: the W3C traceparent parser, and the element index the JSON
// ingestor gives each problem (what lets an answer name each refused event's place in the body).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonIngestor } from '../../src/ingest/json.js';
import { parseTraceparent } from '../../src/receive/http/traceparent.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

test('traceparent: version 00 exactly; later versions may append fields; the invalid forms are refused', () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN });
  assert.deepEqual(parseTraceparent(` 00-${TRACE}-${SPAN}-00 `), { traceId: TRACE, spanId: SPAN });
  assert.deepEqual(parseTraceparent(`01-${TRACE}-${SPAN}-01-future`), { traceId: TRACE, spanId: SPAN });
  for (const bad of [
    `00-${TRACE}-${SPAN}-01-extra`, // version 00 has exactly four fields
    `ff-${TRACE}-${SPAN}-01`, // version ff is forbidden
    `00-${'0'.repeat(32)}-${SPAN}-01`, // all-zero trace id
    `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero parent id
    `00-${TRACE.toUpperCase()}-${SPAN}-01`, // lower-case hex only
    `00-${TRACE.slice(1)}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}`,
    '',
  ]) {
    assert.equal(parseTraceparent(bad), undefined, bad);
  }
});

test('the JSON ingestor gives each problem its element index: arrays and NDJSON', () => {
  const json = new JsonIngestor();
  const ctx = (format: string) => ({ source: 's', cluster: '', format });
  const array = json.ingest(ctx('json'), Buffer.from('[{"id":"a"},{"id":1},{"id":"c"},[],{"severity":"LOUD"}]'));
  assert.deepEqual(
    array.events.map((e) => e.id),
    ['a', 'c'],
  );
  assert.deepEqual(
    array.problems.map((p) => p.index),
    [1, 3, 4],
  );
  // Blank lines are not elements: the index counts events, the message names the line.
  const lines = json.ingest(ctx('ndjson'), Buffer.from('{"id":"a"}\n\n{bad\n{"id":"c"}\n[1]\n'));
  assert.deepEqual(
    lines.problems.map((p) => [p.index, p.message.slice(0, 7)]),
    [
      [1, 'line 3:'],
      [3, 'line 5:'],
    ],
  );
  // A body that is no JSON at all is one problem of the whole: no index.
  assert.deepEqual(
    json.ingest(ctx('json'), Buffer.from('   ')).problems.map((p) => p.index),
    [undefined],
  );
});
