// Our informer's own rules, with watches the test opens and ends by hand: a restart after stop()
// forgets the stopped watch's ERROR, and watches the server ends at once are retried after a wait.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Informer, SHORT_WATCH_MS } from '../../src/discovery/kube/informer.js';
import type { KubeApi, KubeObject, WatchEvent } from '../../src/discovery/kube/kube-api.js';

interface Watch {
  onEvent: (e: WatchEvent) => void;
  end: () => void;
}

/** A KubeApi whose watches the test drives by hand: each is opened at once and ended when told. */
function handDrivenApi(): { api: KubeApi; watches: Watch[] } {
  const watches: Watch[] = [];
  const api = {
    watch: async (_path: string, _query: Record<string, string>, onEvent: (e: WatchEvent) => void) => {
      let end!: () => void;
      const done = new Promise<void>((resolve) => (end = resolve));
      watches.push({ onEvent, end });
      return { done };
    },
  } as unknown as KubeApi;
  return { api, watches };
}

test('a restart after stop() forgets an ERROR event of the stopped watch', { timeout: 10_000 }, async () => {
  const { api, watches } = handDrivenApi();
  let lists = 0;
  const informer = new Informer<KubeObject>({
    api,
    path: '/api/v1/namespaces/x/services',
    query: {},
    list: async () => {
      lists++;
      return { metadata: { resourceVersion: '5' }, items: [] };
    },
  });
  const errors: unknown[] = [];
  informer.on('error', (err) => errors.push(err));

  await informer.start();
  assert.equal(watches.length, 1);
  watches[0]!.onEvent({ type: 'ERROR', object: { code: 500, message: 'etcd busy' } } as WatchEvent);
  await informer.stop(); // before the server ends the stream that carried the ERROR

  await informer.start(); // version 5 kept: watches again without a list
  assert.equal(watches.length, 2);
  assert.equal(lists, 1);
  watches[1]!.end(); // the new watch ends cleanly: watch again from the same version
  await until(() => watches.length === 3);
  assert.deepEqual(errors, [], 'the stopped watch’s ERROR was reported for the new one');
  assert.equal(lists, 1, 'a clean end re-watches, it does not relist');
  await informer.stop();
});

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((r) => setImmediate(r));
  }
}

test('watches the server ends at once, with nothing on them, are retried after a doubling wait', { timeout: 10_000 }, async () => {
  const { api, watches } = handDrivenApi();
  let now = 0;
  const waits: number[] = [];
  let wake: (() => void) | undefined;
  const informer = new Informer<KubeObject>({
    api,
    path: '/api/v1/namespaces/x/services',
    query: {},
    list: async () => ({ metadata: { resourceVersion: '5' }, items: [] }),
    nowMs: () => now,
    sleep: (ms) => {
      waits.push(ms);
      return new Promise<void>((resolve) => (wake = resolve));
    },
  });
  await informer.start();
  // The first short watch is watched again at once: a server may end one watch for its own reasons.
  watches[0]!.end();
  await until(() => watches.length === 2);
  assert.deepEqual(waits, []);
  // The second in a row waits 100 ms, the third 200 ms: no watch is opened before the wait ends.
  watches[1]!.end();
  await until(() => waits.length === 1);
  assert.deepEqual(waits, [100]);
  assert.equal(watches.length, 2, 'a watch was opened before the wait ended');
  wake!();
  await until(() => watches.length === 3);
  watches[2]!.end();
  await until(() => waits.length === 2);
  assert.deepEqual(waits, [100, 200]);
  wake!();
  await until(() => watches.length === 4);
  // A watch that heard something, or lasted, is not short: the count starts again.
  watches[3]!.onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } } as WatchEvent);
  watches[3]!.end();
  await until(() => watches.length === 5);
  now += SHORT_WATCH_MS;
  watches[4]!.end();
  await until(() => watches.length === 6);
  assert.deepEqual(waits, [100, 200], 'a watch that heard a bookmark or lasted 1 s was counted short');
  // stop() during a wait: the wait's end opens nothing.
  watches[5]!.end();
  await until(() => watches.length === 7);
  watches[6]!.end();
  await until(() => waits.length === 3);
  await informer.stop();
  wake!();
  await new Promise((r) => setImmediate(r));
  assert.equal(watches.length, 7, 'a watch was opened after stop()');
});
