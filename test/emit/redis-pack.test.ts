// The script command's packing (src/emit/redis-pack.ts): the layout packXadd writes, and, against a
// real redis-server, one command whose events go to several streams interleaved, with multi-byte
// text, an empty payload and a payload larger than the packer's first buffer: every entry on its
// own stream, in batch order, each field exact.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { systemClock, systemTimers } from '../../src/clock.js';
import { packXadd } from '../../src/emit/redis-pack.js';
import { RedisStreamEmitter } from '../../src/emit/redis-stream.js';
import { Severity } from '../../src/gen/polku/v1/event.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { fullEvent } from '../helpers/full-event.js';
import { redisMissing, RedisServer } from '../helpers/redis-server.js';

/** Reads packXadd's layout back: per event a key index and 8 length-prefixed fields. */
function unpack(data: Buffer, count: number): Array<{ key: number; fields: Buffer[] }> {
  const out: Array<{ key: number; fields: Buffer[] }> = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const key = data.readUInt32BE(at);
    at += 4;
    const fields: Buffer[] = [];
    for (let f = 0; f < 8; f++) {
      const n = data.readUInt32BE(at);
      fields.push(data.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
    out.push({ key, fields });
  }
  assert.equal(at, data.length, 'nothing after the last event');
  return out;
}

test('packXadd: distinct streams as KEYS (first seen first), a key index and 8 length-prefixed fields per event', () => {
  const events = [
    fullEvent({ id: 'a', source: 's1' }),
    fullEvent({ id: 'ïd-b', source: 's2', payload: new Uint8Array(0) }),
    fullEvent({ id: 'c', source: 's1', severity: Severity.SEVERITY_ERROR }),
  ];
  // From index 1 on: the first event is not packed.
  const { keys, data } = packXadd(events, 1, 3, (e) => `st:${e.source}`);
  assert.deepEqual(keys, ['st:s2', 'st:s1']);
  const got = unpack(data, 2);
  assert.deepEqual(
    got.map((g) => [g.key, g.fields[0]!.toString(), g.fields[3]!.toString(), g.fields[4]!.toString(), g.fields[7]!.length]),
    [
      [1, 'ïd-b', 'pod.started', 'SEVERITY_WARNING', 0],
      [2, 'c', 'pod.started', 'SEVERITY_ERROR', 5],
    ],
  );
  assert.equal(got[0]!.fields[1]!.toString(), '1764560000123456789');
  assert.equal(got[0]!.fields[5]!.toString(), 'OUTCOME_FAILURE');
  assert.deepEqual(JSON.parse(got[0]!.fields[6]!.toString()), fullEvent().metadata);
});

const skip = redisMissing();
let server: RedisServer;
let client: Redis;
let emitter: RedisStreamEmitter;

describe('the packed script against redis-server', { skip }, () => {
  before(async () => {
    server = await RedisServer.start();
    client = new Redis(server.url);
    emitter = new RedisStreamEmitter({ url: server.url, stream: 'pk:{source}', eventsPerCommand: 1000 });
    emitter.init({ registry: createRegistry(), logger: silentLogger(), clock: systemClock, timers: systemTimers });
  });
  after(async () => {
    await emitter?.shutdown();
    client?.disconnect();
    await server?.close();
  });

  test('one command, three streams interleaved, multi-byte text, an empty and a 200 KB payload: entries exact, in order', async () => {
    const big = new Uint8Array(200_000).map((_, i) => i % 256);
    const events = Array.from({ length: 30 }, (_, i) =>
      fullEvent({
        id: `ïd-${i}`,
        source: ['a', 'b', 'c'][i % 3]!,
        metadata: { k: `värde ${i} ✓` },
        payload: i === 4 ? new Uint8Array(0) : i === 7 ? big : new Uint8Array([i, 255, 0]),
      }),
    );
    assert.deepEqual(await emitter.emit(events), { status: 'success' });
    for (const [s, source] of ['a', 'b', 'c'].entries()) {
      const rows = await client.xrangeBuffer(`pk:${source}`, '-', '+');
      const want = events.filter((_, i) => i % 3 === s);
      assert.equal(rows.length, want.length);
      rows.forEach(([, fields], j) => {
        const o: Record<string, Buffer> = {};
        for (let f = 0; f < fields.length; f += 2) o[fields[f]!.toString()] = fields[f + 1]!;
        const e = want[j]!;
        assert.equal(o['id']!.toString(), e.id);
        assert.equal(o['source']!.toString(), source);
        assert.deepEqual(JSON.parse(o['metadata']!.toString()), e.metadata);
        assert.deepEqual(new Uint8Array(o['payload']!), e.payload);
      });
    }
  });
});
