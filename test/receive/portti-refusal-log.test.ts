import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Ack } from '../../src/gen/polku/v1/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { PorttiReceiverMetrics, REFUSAL_LOG_EVERY_MS, RefusalRecorder } from '../../src/receive/portti/portti-metrics.js';
import { FakeClock } from '../../src/testing/index.js';

const ack = (accepted: number, refused: Array<[string, string]>): Ack => ({
  eventIds: Array.from({ length: accepted }, (_, i) => `ok-${i}`),
  errors: refused.map(([eventId, code]) => ({ eventId, code, message: `${code} of ${eventId}` })),
  bufferSize: 0n,
  bufferCapacity: 10n,
  middlewareStats: undefined,
});

test('refusals are all counted by code, but logged at most once per interval with the count since', async () => {
  const out = new PassThrough();
  const lines: Array<Record<string, any>> = [];
  out.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
  });
  const clock = new FakeClock();
  const registry = createRegistry();
  const recorder = new RefusalRecorder('portti.v1.PorttiService', PorttiReceiverMetrics.of(registry), createLogger('info', out), clock);

  recorder.record(ack(3, [])); // nothing refused: no line, no count
  recorder.record(ack(1, [['a', 'PARSE_ERROR']])); // the first: logged at once
  recorder.record(
    ack(0, [
      ['b', 'PARSE_ERROR'],
      ['c', 'INVALID_EVENT'],
    ]),
  );
  clock.advance(REFUSAL_LOG_EVERY_MS - 1);
  recorder.record(ack(2, [['d', 'FILTERED']]));
  clock.advance(1);
  recorder.record(ack(5, [['e', 'INVALID_EVENT']])); // the interval has passed: one line for four
  await new Promise<void>((resolve) => setImmediate(resolve));

  assert.deepEqual(
    lines.map((l) => [l['msg'], l['refused'], l['accepted'], l['error'].eventId, l['error'].code]),
    [
      ['PORTTI events refused', 1, 1, 'a', 'PARSE_ERROR'],
      ['PORTTI events refused', 4, 5, 'e', 'INVALID_EVENT'],
    ],
  );
  const metric = await registry.getSingleMetric('polku_portti_refused_events_total')!.get();
  const byCode = Object.fromEntries(metric.values.map((v) => [v.labels['code'], v.value]));
  assert.deepEqual(byCode, { PARSE_ERROR: 2, INVALID_EVENT: 2, FILTERED: 1 });
  assert.ok(metric.values.every((v) => v.labels['service'] === 'portti.v1.PorttiService'));
});
