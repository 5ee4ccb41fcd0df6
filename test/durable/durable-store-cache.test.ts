import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { DurableStore, NOT_SEEN, SEEN } from '../../src/buffer/durable/durable-store.js';
import type { EventRecordInput } from '../../src/buffer/durable/event-record.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { createLogger } from '../../src/observability/logger.js';
import { FakeClock } from '../../src/testing/index.js';
import { tempDirs } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs('polku-store-');
after(() => dirs.cleanup());

const quiet = createLogger('error', new Writable({ write: (_c, _e, done) => done() }));

function entries(from: number, n: number): EventRecordInput[] {
  return Array.from({ length: n }, (_, i) => ({
    event: Event.fromPartial({ id: `e${from + i}`, source: 'test', payload: new Uint8Array([from + i]) }),
    targets: ['a'],
    key: `k${from + i}`,
  }));
}

describe('DurableStore: decoded events in memory', () => {
  test('a committed event stays in memory until every reader has passed it, then only the log has it', async () => {
    const store = await DurableStore.open({ dir: dirs.make(), fsync: false, cacheEvents: 100 }, new FakeClock(), quiet);
    const first = store.nextSeq;
    store.openReader('a', first);
    store.openReader('b', first);
    await store.commit(entries(0, 10));
    assert.equal(store.cachedEvents, 10);

    store.setCursor('a', first + 10);
    assert.equal(store.cachedEvents, 10, 'b has not read them yet');
    store.setCursor('b', first + 4);
    assert.equal(store.cachedEvents, 6, 'the four both have passed are released');
    // Released events are read back from the log, whole.
    assert.deepEqual(
      (await store.read(first, 10)).map((s) => [s.seq, s.event.id, [...s.event.payload], s.targets]),
      Array.from({ length: 10 }, (_, i) => [first + i, `e${i}`, [i], ['a']]),
    );
    // A released event's idempotency key is confirmed from the log instead of memory.
    assert.equal(store.lookup('k0'), first);
    assert.equal(await store.storedKeyIs(first, 'k0'), true);
    assert.equal(store.lookup('k6'), SEEN, 'still in memory: confirmed there');
    assert.equal(store.lookup('k99'), NOT_SEEN);

    store.closeReader('b');
    assert.equal(store.cachedEvents, 0, 'a closed reader holds nothing in memory');
    await store.commit(entries(10, 3));
    assert.equal(store.cachedEvents, 3, 'new events wait for the reader still open');
    await store.close();
  });

  test('a reader that falls behind keeps at most cacheEvents in memory, and reads the rest from the log', async () => {
    const store = await DurableStore.open({ dir: dirs.make(), fsync: false, cacheEvents: 8 }, new FakeClock(), quiet);
    const first = store.nextSeq;
    store.openReader('slow', first);
    for (let i = 0; i < 40; i += 4) await store.commit(entries(i, 4));
    assert.ok(store.cachedEvents <= 8 + 8 / 4, `${store.cachedEvents} events in memory`);
    const all = await store.read(first, 100);
    assert.deepEqual(
      all.map((s) => s.event.id),
      Array.from({ length: 40 }, (_, i) => `e${i}`),
    );
    await store.close();
  });

  test('one commit larger than cacheEvents stays in memory whole until the reader passes it', async () => {
    // Several batches per stream waiting for one group commit make groups of thousands of events;
    // trimming the commit just made would send every emitter to the disk for all but its tail.
    const store = await DurableStore.open({ dir: dirs.make(), fsync: false, cacheEvents: 8 }, new FakeClock(), quiet);
    const first = store.nextSeq;
    store.openReader('a', first);
    await store.commit(entries(0, 30));
    assert.equal(store.cachedEvents, 30, 'the whole group, though over cacheEvents');
    const once = await store.read(first, 100);
    const again = await store.read(first, 100);
    assert.deepEqual(
      once.map((s) => s.event.id),
      Array.from({ length: 30 }, (_, i) => `e${i}`),
    );
    // From memory, a read hands out the cached objects themselves; from the log, fresh decodes.
    assert.ok(
      once.every((s, i) => s === again[i]),
      'every event came from memory',
    );
    // The next commit bounds the one before by cacheEvents again.
    await store.commit(entries(30, 2));
    assert.ok(store.cachedEvents <= 8 + 2, `${store.cachedEvents} events in memory after the next commit`);
    await store.close();
  });
});
