import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CursorStore } from '../../src/buffer/durable/cursor-store.js';
import { StorageError } from '../../src/buffer/durable/segment-log.js';
import { FakeTimers } from '../../src/testing/index.js';
import { tempDirs } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs('polku-cursors-');
/** Timers never advanced: the positions file is never written, so these tests see the JSON file alone. */
const jsonOnly = { timers: new FakeTimers() };
const mounts: string[] = [];
after(() => {
  for (const m of mounts) execFileSync('umount', ['-l', m], { stdio: 'pipe' });
  dirs.cleanup();
});

async function storeWith(file: string, cursors: Record<string, number>): Promise<CursorStore> {
  const store = await CursorStore.open(file, jsonOnly);
  for (const [name, seq] of Object.entries(cursors)) store.set(name, seq);
  await store.flush();
  return store;
}

describe('CursorStore', () => {
  test('a missing file is an empty store; set, get and entries work in memory; flush persists them for the next open', async () => {
    const file = join(dirs.make(), 'cursors.json');
    const store = await CursorStore.open(file, jsonOnly);
    assert.deepEqual([store.entries(), store.recoveredFromCorruption, store.get('webhook')], [[], false, undefined]);
    store.set('webhook', 42);
    store.set('123', 7); // a name that looks like an array index keeps its place and its checksum
    store.set('webhook', 43);
    assert.deepEqual(store.entries(), [
      ['webhook', 43],
      ['123', 7],
    ]);
    assert.equal(existsSync(file), false, 'nothing on disk before flush');
    await store.flush();
    const reopened = await CursorStore.open(file, jsonOnly);
    assert.deepEqual(
      [reopened.entries(), reopened.recoveredFromCorruption, reopened.get('webhook')],
      [
        [
          ['webhook', 43],
          ['123', 7],
        ],
        false,
        43,
      ],
    );
    assert.equal(existsSync(`${file}.tmp`), false);
  });

  test('flush replaces the file atomically: a new file renamed over the old, and a crash mid-flush leaves the old cursors', async () => {
    const file = join(dirs.make(), 'cursors.json');
    const store = await storeWith(file, { a: 1 });
    const inode = statSync(file).ino;
    store.set('a', 2);
    await store.flush();
    assert.notEqual(statSync(file).ino, inode, 'never rewritten in place');
    // A crash while writing the next version leaves a partial temp file behind; the real one is intact.
    writeFileSync(`${file}.tmp`, '{"version":1,"cursors":[["a",3]');
    const reopened = await CursorStore.open(file, jsonOnly);
    assert.deepEqual([reopened.entries(), reopened.recoveredFromCorruption], [[['a', 2]], false]);
    reopened.set('a', 3);
    await reopened.flush();
    assert.deepEqual((await CursorStore.open(file, jsonOnly)).entries(), [['a', 3]]);
  });

  test('flushes run one at a time and coalesce: calls during a write share one follow-up write; no change, no write', async () => {
    const file = join(dirs.make(), 'cursors.json');
    const store = await CursorStore.open(file, jsonOnly);
    store.set('a', 1);
    const first = store.flush();
    store.set('a', 2);
    const second = store.flush();
    store.set('b', 5);
    assert.equal(store.flush(), second);
    assert.equal(store.flush(), second);
    await Promise.all([first, second]);
    assert.equal(store.flushCount, 2);
    assert.deepEqual((await CursorStore.open(file, jsonOnly)).entries(), [
      ['a', 2],
      ['b', 5],
    ]);
    await store.flush();
    store.set('a', 2);
    await store.flush();
    assert.equal(store.flushCount, 2, 'nothing changed');
  });

  test('a corrupt file (broken JSON, wrong shape, or a changed digit) opens as an empty store with recoveredFromCorruption', async () => {
    const dir = dirs.make();
    const file = join(dir, 'cursors.json');
    await storeWith(file, { webhook: 1234 });
    const good = readFileSync(file, 'utf8');
    for (const bad of [
      good.slice(0, 20),
      good.replace('1234', '1235'),
      '[1,2,3]',
      '{"version":2,"cursors":[],"crc32":0}',
      '\0\0\0\0',
      '',
    ]) {
      writeFileSync(file, bad);
      const store = await CursorStore.open(file, jsonOnly);
      assert.deepEqual([store.entries(), store.recoveredFromCorruption], [[], true], `content ${JSON.stringify(bad)}`);
    }
    const store = await CursorStore.open(file, jsonOnly);
    store.set('webhook', 9);
    await store.flush();
    const repaired = await CursorStore.open(file, jsonOnly);
    assert.deepEqual([repaired.entries(), repaired.recoveredFromCorruption], [[['webhook', 9]], false]);
  });

  test('a failed flush rejects with StorageError, keeps the changes, and the next flush writes them', async () => {
    const dir = join(dirs.make(), 'not-yet');
    const file = join(dir, 'cursors.json');
    const store = await CursorStore.open(file, jsonOnly);
    store.set('a', 1);
    await assert.rejects(store.flush(), (err: unknown) => err instanceof StorageError && err.code === 'STORAGE_IO');
    mkdirSync(dir);
    await store.flush();
    assert.deepEqual((await CursorStore.open(file, jsonOnly)).entries(), [['a', 1]]);
  });

  test('on a full disk (tmpfs) flush rejects STORAGE_FULL and the previous file stays intact', async () => {
    const mnt = dirs.make();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    mounts.push(mnt);
    const file = join(mnt, 'cursors.json');
    const store = await storeWith(file, { a: 1 });
    writeFileSync(join(mnt, 'filler'), Buffer.alloc(48 * 1024));
    for (let i = 0; i < 2000; i++) store.set(`emitter-${i}`, i);
    await assert.rejects(store.flush(), (err: unknown) => err instanceof StorageError && err.code === 'STORAGE_FULL');
    const reopened = await CursorStore.open(file, jsonOnly);
    assert.deepEqual([reopened.entries(), reopened.recoveredFromCorruption], [[['a', 1]], false]);
  });
});
