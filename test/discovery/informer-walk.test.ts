// A random walk for the two informers of informer-pair.ts (client-node's makeInformer and ours):
// bursts of changes and failures — adds, updates, deletes, relabels out of the selector, watches
// ended gracefully or by a destroyed socket, history compacted (410 Gone on the next watch or list
// page), bookmarks, watches and lists refused with 500, ERROR events with a 500 Status, and yields
// to I/O in the middle — hit the same FakeApiServer while both read it; a failed side is restarted
// at once, as its owner would after a backoff. After each burst, within a deadline, both caches
// must equal what the server holds (no stale object, no missed delete), and each side's reported
// adds, updates and deletes, replayed in order, must rebuild its cache: an add only for an object
// it did not have, an update or a delete only for one it had.
//
// The walks are seeded (SEEDS below); a failure names its seed and the operations of the burst,
// so the walk can be replayed by running that seed alone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { until } from '../helpers/gateway-harness.js';
import { FakeApiServer } from './fake-apiserver.js';
import { NS, informerPair, key, svc, type InformerPair, type Side } from './informer-pair.js';
import { mulberry32 } from '../helpers/seeded-random.js';

const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);
const BURSTS = 25;
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
/** Small pages, so lists span pages and a compaction can expire a continue token. */
const PAGE = 2;
const WAIT_MS = 5_000;

describe('informer conformance: a random walk of changes and failures', () => {
  let fake: FakeApiServer;
  let pair: InformerPair;
  /** What the server holds, name → resourceVersion. */
  const held = new Map<string, string>();
  /** Each side's cache as rebuilt from its reported events. */
  const replayed = new Map<Side['name'], Map<string, string>>([
    ['client-node', new Map()],
    ['ours', new Map()],
  ]);
  let port = 10_000;
  /** The seed of a walk that failed: the walks after it fail at once. */
  let broken = 0;

  before(async () => {
    fake = await new FakeApiServer().start();
    fake.maxPage = PAGE;
    for (const name of NAMES.slice(0, 4)) held.set(name, fake.apply('services', svc(name, ++port)));
    // A failed side starts again once the failure is reported (its owner's backoff, made 0 here).
    pair = informerPair(fake, (side) =>
      setImmediate(() => {
        if (!side.stopped) void side.start();
      }),
    );
    await Promise.all(pair.sides.map((s) => s.start()));
  });

  after(async () => {
    await pair?.close();
    await fake?.stop();
  });

  /** Replays the events `side` reported since the last call onto its rebuilt cache. */
  function replay(side: Side, seed: number, burst: number): void {
    const cache = replayed.get(side.name)!;
    for (const e of side.events.splice(0)) {
      const [verb, obj] = e.split(' ') as [string, string];
      const [name, rv] = obj.split('@') as [string, string];
      const where = `seed ${seed}, burst ${burst}: ${side.name} reported "${e}"`;
      if (verb === 'add') assert.ok(!cache.has(name), `${where} for an object it had`);
      else assert.ok(cache.has(name), `${where} for an object it did not have`);
      if (verb === 'delete') cache.delete(name);
      else cache.set(name, rv);
    }
  }

  for (const seed of SEEDS) {
    test(
      `seed ${seed}: ${BURSTS} bursts; after each both caches equal the server's, and their events rebuild them`,
      { timeout: 20_000 },
      async () => {
        // Each walk goes on from where the one before left the server and both informers.
        assert.equal(broken, 0, `the walk of seed ${broken} failed`);
        broken = seed;
        const next = mulberry32(seed);
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
        const put = (name: string) => {
          held.set(name, fake.apply('services', svc(name, ++port)));
          return `put ${name}`;
        };
        const ops: Array<[weight: number, run: () => string | Promise<string>]> = [
          [30, () => put(pick(NAMES))],
          [
            10,
            (name = pick(NAMES)) => {
              fake.delete('services', NS, name);
              held.delete(name);
              return `delete ${name}`;
            },
          ],
          [
            8,
            (name = pick(NAMES)) => {
              fake.apply('services', svc(name, ++port, false));
              held.delete(name);
              return `relabel ${name} out`;
            },
          ],
          [8, () => (fake.dropWatches(), 'end watches')],
          [5, () => (fake.dropWatches(true), 'break watches')],
          [8, () => (fake.compact(), 'compact')],
          [6, () => (fake.bookmark(), 'bookmark')],
          [4, () => (fake.fail('services', 500, 1, true), 'refuse a watch (500)')],
          [4, () => (fake.fail('services', 500, 1, false), 'refuse a list (500)')],
          [4, () => (fake.failWatches(500, 'InternalError', 'walk'), 'ERROR event (500)')],
          [13, () => new Promise<string>((resolve) => setImmediate(() => resolve('yield to I/O')))],
        ];
        const total = ops.reduce((sum, [w]) => sum + w, 0);
        const choose = () => {
          let r = next() * total;
          for (const [w, run] of ops) if ((r -= w) < 0) return run;
          return ops[ops.length - 1]![1];
        };

        for (let burst = 1; burst <= BURSTS; burst++) {
          const done: string[] = [];
          const length = 1 + Math.floor(next() * 6);
          for (let i = 0; i < length; i++) done.push(await choose()());
          // A change nobody watches for would leave nothing to wait for: one put ends each burst.
          done.push(put(pick(NAMES)));
          const want = [...held].map(([n, rv]) => `${n}@${rv}`).sort();
          const where = `seed ${seed}, burst ${burst} (${done.join(', ')})`;
          const cacheOf = (s: Side) => s.objects().map(key).sort();
          await until(
            () => pair.sides.every((s) => JSON.stringify(cacheOf(s)) === JSON.stringify(want)),
            `${where}: both caches current`,
            WAIT_MS,
          );
          for (const s of pair.sides) {
            assert.deepEqual(cacheOf(s), want, `${where}: ${s.name}'s cache`);
            replay(s, seed, burst);
            const rebuilt = [...replayed.get(s.name)!].map(([n, rv]) => `${n}@${rv}`).sort();
            assert.deepEqual(rebuilt, want, `${where}: ${s.name}'s events rebuild its cache`);
          }
        }
        broken = 0;
      },
    );
  }

  test('the walks went through relists, paged lists and failures on both sides', { timeout: 5_000 }, () => {
    for (const s of pair.sides) {
      const asked = pair.requestsOf(s);
      const lists = asked.filter((r) => !r.watch && r.query['continue'] === undefined).length;
      const pages = asked.filter((r) => !r.watch && r.query['continue'] !== undefined).length;
      assert.ok(lists >= 5, `${s.name}: ${lists} lists`);
      assert.ok(pages >= 5, `${s.name}: ${pages} pages after the first of a list`);
      assert.ok(s.errors.length >= 5, `${s.name}: ${s.errors.length} failures`);
    }
  });
});
