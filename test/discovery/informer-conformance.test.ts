// Conformance of discovery's own list/watch client (src/discovery/kube/informer.ts) with the
// reference, @kubernetes/client-node's makeInformer (ListWatch): both read the SAME in-process
// FakeApiServer, with the same label selector, through the SAME changes — a list over several
// pages (continue tokens), adds, updates and deletes while watching, an object relabelled out of
// the selector and back, the watch ended by the server, a bookmark, 410 Gone (as an ERROR event
// and as HTTP 410, with changes lost from history), an expired continue token, a watch and a relist
// refused with 500, a connection broken mid-watch, an ERROR event with a 500 Status, stop() — and
// after each step both caches must hold the same objects (name@resourceVersion, equal to what the
// server holds) and both must have reported the same adds, updates and deletes.
//
// Where client-node is documented (by its code, cache.ts and watch.ts) to behave differently, the
// difference is asserted as such, not hidden:
//  - its watch never asks for bookmarks (no allowWatchBookmarks), so a bookmark moves only our
//    version; after the history is compacted past its last event it relists where we resume;
//  - a list that fails (e.g. an expired continue token, 410) goes to its `error` listeners and it
//    stops; ours treats a 410 on a list page like any 410 and lists again by itself;
//  - an ERROR event other than 410 is dropped and, the stream ended, it watches again at once from
//    the same version; ours reports the Status as an error (its owner restarts it after a backoff);
//  - its stop() aborts the watch and reports that AbortError to the `error` listeners; ours
//    reports nothing after stop();
//  - ListWatch takes one list call (paging is its caller's), and it cannot reach a plain-http
//    server unless the kubeconfig says insecure-skip-tls-verify.
//
// Each client authenticates with its own bearer token, so the fake's request log says who asked
// what. Restarts after an error are the test's (as the owner's backoff would be), so injected
// failures land on each client exactly once. Every wait is for a condition with a deadline.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LIST_PAGE } from '../../src/discovery/kube/kube-api.js';
import { until } from '../helpers/gateway-harness.js';
import { FakeApiServer } from './fake-apiserver.js';
import { NS, SELECTOR, informerPair, key, statusOf, svc, type InformerPair, type Side } from './informer-pair.js';

/** The fake's page size: the first list (7 Services) takes three pages. */
const PAGE = 3;
const STEP = { timeout: 10_000 };
const WAIT_MS = 5_000;

/** One entry per page a list of `n` objects takes. */
const pages = (n: number) => Array.from({ length: Math.ceil(n / PAGE) });

describe('informer conformance: client-node and ours read the same API server alike', () => {
  let fake: FakeApiServer;
  let pair: InformerPair;
  let sides: Side[];
  let reference: Side;
  let ours: Side;
  /** What the server holds, name → resourceVersion. */
  const held = new Map<string, string>();
  let port = 9000;

  const put = (name: string): string => {
    const rv = fake.apply('services', svc(name, ++port));
    held.set(name, rv);
    return rv;
  };
  /** Takes the plugin label off: the object leaves the selector (a DELETED to the watches). */
  const unlabel = (name: string): string => {
    const rv = fake.apply('services', svc(name, ++port, false));
    held.delete(name);
    return rv;
  };
  const remove = (name: string): string => {
    fake.delete('services', NS, name);
    held.delete(name);
    return fake.resourceVersion;
  };
  const expected = () => [...held].map(([n, rv]) => `${n}@${rv}`).sort();
  const cacheOf = (s: Side) => s.objects().map(key).sort();
  const requestsOf = (s: Side, from = 0) => pair.requestsOf(s, from);

  /** Both caches equal what the server holds; then each side's events since the last call. */
  async function agree(what: string): Promise<Record<Side['name'], string[]>> {
    const want = expected();
    await until(() => sides.every((s) => JSON.stringify(cacheOf(s)) === JSON.stringify(want)), `${what}: both caches current`, WAIT_MS);
    for (const s of sides) assert.deepEqual(cacheOf(s), want, `${s.name}'s cache after ${what}`);
    return { 'client-node': reference.events.splice(0), ours: ours.events.splice(0) };
  }
  const bothWatching = (what: string) => until(() => fake.watching('services') === 2, `${what}: both watching`, WAIT_MS);
  /**
   * Restarts `which` (each with one error reported, as an owner's backoff would) and checks that
   * each resumed watching from its version without listing, both reporting `changes`.
   */
  async function restartAndResume(what: string, versions: string[], changes: string[], which = sides): Promise<void> {
    const from = fake.requests.length;
    for (const s of which) {
      assert.equal(s.errors.length, 1, `${s.name}: one error`);
      s.errors.length = 0;
      await s.start();
    }
    const seen = await agree(`a restart after ${what}`);
    assert.deepEqual(seen.ours, changes);
    assert.deepEqual(seen['client-node'], changes);
    await bothWatching(`after the restart (${what})`);
    for (const s of which) {
      const i = sides.indexOf(s);
      assert.deepEqual(
        requestsOf(s, from).map((r) => [r.watch, r.query['resourceVersion']]),
        [[true, versions[i]]],
        `${s.name} resumed from ${versions[i]} without listing`,
      );
    }
  }
  const bothFailed = (what: string, n: number) =>
    until(() => sides.every((s) => s.errors.length === n), `${what}: an error on each side`, WAIT_MS);

  /**
   * A step of the sequence, with a deadline. Each step starts from where the one before left both
   * informers, so after a failure the rest fail at once instead of each waiting out its deadline.
   */
  let broken = '';
  const step = (name: string, fn: () => Promise<void>): void => {
    void test(name, STEP, async () => {
      assert.equal(broken, '', `an earlier step failed (${broken})`);
      try {
        await fn();
      } catch (err) {
        broken = name;
        throw err;
      }
    });
  };

  before(async () => {
    fake = await new FakeApiServer().start();
    fake.maxPage = PAGE;
    for (let i = 0; i < 7; i++) put(`s${i}`);
    fake.apply('services', svc('not-a-plugin', 1, false)); // outside the selector: never seen
    // Something in another namespace, so the version moves past what these watches see.
    fake.apply('services', { ...svc('elsewhere', 1), metadata: { name: 'elsewhere', namespace: 'other' } });

    // Nothing restarts on its own: each step restarts as an owner's backoff would.
    pair = informerPair(fake);
    ({ sides, reference, ours } = pair);
  }, STEP);

  // Whatever a step left behind: both informers stopped, our keep-alive agent closed, every
  // connection to the server ended.
  after(async () => {
    await pair?.close();
    await fake?.stop();
  }, STEP);

  step('the first list reads every page: both hold the same objects and report the same adds', async () => {
    await Promise.all(sides.map((s) => s.start()));
    const seen = await agree('the first list');
    const adds = [...held].map(([n, rv]) => `add ${n}@${rv}`);
    assert.deepEqual(seen.ours, adds);
    assert.deepEqual(seen['client-node'], adds);
    for (const s of sides) {
      const lists = requestsOf(s).filter((r) => !r.watch);
      assert.deepEqual(
        lists.map((r) => [r.query['limit'], r.query['continue'] !== undefined]),
        pages(7).map((_, i) => [String(LIST_PAGE), i > 0]),
        `${s.name} asked for three pages, following the continue tokens`,
      );
      assert.ok(
        requestsOf(s).every((r) => r.query['labelSelector'] === SELECTOR),
        `${s.name} sent the selector with every page and the watch`,
      );
      assert.equal(s.latestResourceVersion(), fake.resourceVersion, `${s.name} starts watching from the list's version`);
      assert.deepEqual(s.errors, []);
    }
    await bothWatching('after the first list');
  });

  step('adds, updates and deletes while watching reach both, in the same order', async () => {
    const changes = [
      `add s7@${put('s7')}`,
      `update s1@${put('s1')}`,
      `delete s2@${remove('s2')}`,
      `update s7@${put('s7')}`,
      `delete s7@${remove('s7')}`,
    ];
    const seen = await agree('watched changes');
    assert.deepEqual(seen.ours, changes);
    assert.deepEqual(seen['client-node'], changes);
    for (const s of sides) assert.equal(s.latestResourceVersion(), fake.resourceVersion);
  });

  step('an object relabelled out of the selector leaves both caches; relabelled back, it returns', async () => {
    const out = [`delete s6@${unlabel('s6')}`];
    assert.deepEqual(await agree('a relabel out'), { 'client-node': out, ours: out });
    const back = [`add s6@${put('s6')}`];
    assert.deepEqual(await agree('a relabel back'), { 'client-node': back, ours: back });
  });

  step('the server ends the watch: both watch again from their last version, without listing', async () => {
    const from = fake.requests.length;
    const versions = sides.map((s) => s.latestResourceVersion());
    fake.dropWatches();
    const rv = put('s3'); // made while nobody watches: the resumed watches replay it from history
    const seen = await agree('a resumed watch');
    assert.deepEqual(seen.ours, [`update s3@${rv}`]);
    assert.deepEqual(seen['client-node'], [`update s3@${rv}`]);
    await bothWatching('after the server ended the watch');
    sides.forEach((s, i) => {
      assert.deepEqual(
        requestsOf(s, from).map((r) => [r.watch, r.query['resourceVersion']]),
        [[true, versions[i]]],
        `${s.name}: one watch from ${versions[i]}, no list`,
      );
    });
  });

  step('a bookmark moves our version (client-node never asks for bookmarks), so ours resumes where client-node relists', async () => {
    for (const s of sides) {
      const watch = requestsOf(s).filter((r) => r.watch);
      assert.equal(watch.at(-1)?.query['allowWatchBookmarks'], s === ours ? 'true' : undefined, `${s.name}'s watch`);
    }
    const before = reference.latestResourceVersion();
    fake.apply('services', { ...svc('elsewhere', 2), metadata: { name: 'elsewhere', namespace: 'other' } });
    const bookmark = fake.resourceVersion;
    fake.bookmark();
    await until(() => ours.latestResourceVersion() === bookmark, 'ours read the bookmark', WAIT_MS);
    assert.equal(reference.latestResourceVersion(), before, 'client-node got no bookmark');

    // History is lost up to the bookmark: a watch from the bookmark still resumes, one from an
    // older version gets 410 Gone and relists (and finds nothing changed).
    const from = fake.requests.length;
    fake.compact();
    fake.dropWatches();
    const seen = await agree('after a compaction');
    await bothWatching('after the compaction');
    assert.deepEqual(seen, { 'client-node': [], ours: [] }, 'a relist of unchanged objects reports nothing');
    assert.deepEqual(
      requestsOf(ours, from).map((r) => [r.watch, r.query['resourceVersion']]),
      [[true, bookmark]],
    );
    await until(() => requestsOf(reference, from).filter((r) => r.watch).length === 2, 'client-node watching again', WAIT_MS);
    assert.deepEqual(
      requestsOf(reference, from).map((r) => [r.watch, r.query['resourceVersion'], r.query['continue'] !== undefined]),
      [
        [true, before, false], // 410 Gone
        ...pages(held.size).map((_, i) => [false, undefined, i > 0]),
        [true, bookmark, false],
      ],
    );
  });

  for (const goneAs of ['event', 'http'] as const) {
    step(
      `410 Gone (${goneAs === 'event' ? 'an ERROR event' : 'HTTP 410'}): both relist and report what changed while history was lost`,
      async () => {
        fake.goneAs = goneAs;
        const from = fake.requests.length;
        fake.dropWatches();
        const changes =
          goneAs === 'event' ? [`update s4@${put('s4')}`, `add s8@${put('s8')}`] : [`update s0@${put('s0')}`, `add s9@${put('s9')}`];
        // A delete nobody saw: the relist must report it with the object as last known.
        const victim = goneAs === 'event' ? 's5' : 's6';
        const last = held.get(victim);
        remove(victim);
        fake.compact();
        const seen = await agree(`410 Gone as ${goneAs}`);
        // A relist reports differences against the cache; their order is each library's own.
        const want = [...changes, `delete ${victim}@${last}`].sort();
        assert.deepEqual([...seen.ours].sort(), want);
        assert.deepEqual([...seen['client-node']].sort(), want);
        await bothWatching(`after 410 Gone as ${goneAs}`);
        for (const s of sides) {
          const asked = requestsOf(s, from);
          assert.equal(asked.filter((r) => !r.watch && r.query['continue'] === undefined).length, 1, `${s.name} listed once`);
          assert.equal(asked.at(-1)?.query['resourceVersion'], fake.resourceVersion, `${s.name} watches from the relist`);
          assert.deepEqual(s.errors, [], `${s.name}: 410 Gone is no error`);
          assert.equal(s.latestResourceVersion(), fake.resourceVersion);
        }
      },
    );
  }

  step('a watch refused with HTTP 500: both report it; restarted, both resume from their version', async () => {
    const versions = sides.map((s) => s.latestResourceVersion());
    fake.fail('services', 500, 2, true);
    fake.dropWatches();
    const rv = put('s1');
    await bothFailed('a refused watch', 1);
    for (const s of sides) assert.equal(statusOf(s.errors[0]), 500, `${s.name}'s error says 500`);
    assert.equal(fake.watching('services'), 0);

    await restartAndResume('HTTP 500', versions, [`update s1@${rv}`]);
  });

  step('a relist refused with HTTP 500: both report it; restarted, both list and catch up', async () => {
    fake.goneAs = 'event';
    fake.fail('services', 500, 2, false);
    fake.dropWatches();
    const last = held.get('s0');
    remove('s0');
    const rv = put('s10');
    fake.compact();
    await bothFailed('a refused relist', 1);
    for (const s of sides) {
      assert.equal(statusOf(s.errors[0]), 500, `${s.name}'s error says 500`);
      assert.equal(s.latestResourceVersion(), '', `${s.name} has no version to resume from`);
    }
    for (const s of sides) {
      s.errors.length = 0;
      await s.start();
    }
    const seen = await agree('a restart after a refused relist');
    const want = [`add s10@${rv}`, `delete s0@${last}`].sort();
    assert.deepEqual([...seen.ours].sort(), want);
    assert.deepEqual([...seen['client-node']].sort(), want);
    await bothWatching('after the relist');
  });

  step('a continue token expired mid-list: ours lists again by itself, client-node reports 410 and is restarted', async () => {
    // Between each client's first and second page, history is compacted past the list's version.
    const firstPages = new Set<string>();
    const unhook = fake.onRequest((r) => {
      if (r.watch || r.query['continue'] !== undefined || firstPages.has(r.authorization)) return;
      firstPages.add(r.authorization);
      queueMicrotask(() => {
        put('s11');
        fake.compact();
      });
    });
    try {
      const from = fake.requests.length;
      fake.goneAs = 'event';
      fake.dropWatches();
      const rv = put('s3');
      fake.compact();
      await until(() => reference.errors.length === 1, 'client-node reported the expired list', WAIT_MS);
      assert.equal(statusOf(reference.errors[0]), 410);
      reference.errors.length = 0;
      await reference.start();
      const seen = await agree('after an expired continue token');
      await bothWatching('after an expired continue token');
      assert.equal(firstPages.size, 2, 'each client had a list expire under it');
      const want = [`update s3@${rv}`, `add s11@${held.get('s11')}`].sort();
      assert.deepEqual([...seen.ours].sort(), want);
      assert.deepEqual([...seen['client-node']].sort(), want);
      assert.deepEqual(ours.errors, [], 'ours lists again without reporting an error');
      // Two lists at least: the one whose token expired, then a whole new one (a third when the
      // other client's compaction lands in the middle of that one too).
      const oursLists = requestsOf(ours, from).filter((r) => !r.watch && r.query['continue'] === undefined).length;
      assert.ok(oursLists >= 2, `ours listed ${oursLists} times`);
    } finally {
      unhook();
    }
  });

  step('a connection broken mid-watch: both report it; restarted, both resume from their version', async () => {
    await bothWatching('before the break');
    const versions = sides.map((s) => s.latestResourceVersion());
    fake.dropWatches(true);
    const rv = put('s4');
    await bothFailed('a broken connection', 1);
    await restartAndResume('a broken connection', versions, [`update s4@${rv}`]);
  });

  step('an ERROR event with a 500 Status: ours reports it and is restarted, client-node watches again at once', async () => {
    await bothWatching('before the ERROR event');
    const versions = sides.map((s) => s.latestResourceVersion());
    const from = fake.requests.length;
    fake.failWatches(500, 'InternalError', 'etcd is unwell');
    const rv = put('s1');
    // client-node drops ERROR events other than 410 and, the stream ended, watches again from the
    // same version by itself; ours reports the Status as an error and its owner restarts it.
    await until(() => ours.errors.length === 1, 'ours reported the ERROR event', WAIT_MS);
    const err = ours.errors[0] as { code?: number; reason?: string; message?: string };
    assert.deepEqual([err.code, err.reason], [500, 'InternalError']);
    assert.match(String(err.message), /etcd is unwell/);
    await until(() => reference.events.length === 1, 'client-node read on', WAIT_MS);
    assert.deepEqual(reference.errors, []);
    assert.deepEqual(
      requestsOf(reference, from).map((r) => [r.watch, r.query['resourceVersion']]),
      [[true, versions[0]]],
    );
    await restartAndResume('an ERROR event', versions, [`update s1@${rv}`], [ours]);
  });

  step('stop() closes every watch; nothing is reported after it', async () => {
    await bothWatching('before stopping');
    const counts = sides.map((s) => s.events.length);
    for (const s of sides) {
      s.stopped = true;
      await s.stop();
    }
    await until(() => fake.watching('services') === 0, 'every watch closed', WAIT_MS);
    put('after-stop');
    fake.bookmark();
    assert.deepEqual(
      sides.map((s) => s.events.length),
      counts,
    );
  });
});
