// Our informer stopped between an ERROR event and the end of its stream, then started again: the
// old ERROR's Status must not be taken for the reason the new watch ends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Informer } from '../../src/discovery/kube/informer.js';
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
