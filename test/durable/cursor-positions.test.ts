import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkDurableDir, describeCheck } from '../../src/buffer/durable/check-log.js';
import { POSITION_SLOT_BYTES } from '../../src/buffer/durable/cursor-positions.js';
import { CursorStore } from '../../src/buffer/durable/cursor-store.js';
import { StorageError } from '../../src/buffer/durable/segment-log.js';
import { FakeTimers } from '../../src/testing/index.js';
import { tempDirs } from '../fixtures/durable-log-helpers.js';

const dirs = tempDirs('polku-positions-');
after(() => dirs.cleanup());

/** Waits for a real file write to land (the store's writes are real I/O), with a deadline. */
async function until(condition: () => boolean, what: string, limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** What a fresh open of `file` sees, with timers that never fire. */
async function onDisk(file: string): Promise<Array<[string, number]>> {
  return (await CursorStore.open(file, { timers: new FakeTimers() })).entries();
}

describe('cursor positions file', () => {
  test('a moved cursor is written persistEveryMs later, in one pwrite for all moves meanwhile; the JSON file is not rewritten', async () => {
    const file = join(dirs.make(), 'cursors.json');
    const timers = new FakeTimers();
    const store = await CursorStore.open(file, { timers, persistEveryMs: 10 });
    store.set('webhook', 1);
    await store.flush(); // the name is in the JSON file, as at start-up
    for (let seq = 2; seq <= 500; seq++) store.set('webhook', seq);
    timers.advance(9);
    assert.equal(store.positionWrites, 0, 'not before persistEveryMs');
    assert.deepEqual(await onDisk(file), [['webhook', 1]]);
    timers.advance(1);
    await until(() => store.positionWrites === 1, 'the positions write');
    assert.deepEqual(await onDisk(file), [['webhook', 500]], 'a restart resumes from the written position');
    assert.equal(timers.pending, 0, 'nothing moved since: no timer left');
    assert.equal(store.flushCount, 1, 'the JSON file was written once, at the start');
    // The next move arms the timer again; no move, no write.
    store.set('webhook', 501);
    assert.equal(timers.pending, 1);
    timers.advance(10);
    await until(() => store.positionWrites === 2, 'the second positions write');
    assert.deepEqual(await onDisk(file), [['webhook', 501]]);
    await store.close();
  });

  test('moves made while a write runs get one follow-up write', async () => {
    const file = join(dirs.make(), 'cursors.json');
    const timers = new FakeTimers();
    const store = await CursorStore.open(file, { timers, persistEveryMs: 5 });
    store.set('a', 1);
    await store.flush(); // a new name goes to the JSON file; moves go to the positions file
    store.set('a', 2);
    timers.advance(5); // the write starts
    store.set('a', 3);
    store.set('b', 7);
    assert.equal(timers.pending, 0, 'no second timer while the write runs');
    await until(() => timers.pending === 1, 'the follow-up timer once the write finished');
    timers.advance(5);
    await until(() => store.positionWrites === 2, 'the follow-up write');
    assert.deepEqual(await onDisk(file), [
      ['a', 3],
      ['b', 7],
    ]);
    await store.close();
  });

  test('checkpoint: moved positions are synced without a JSON rewrite; a new name rewrites the JSON file', async () => {
    const file = join(dirs.make(), 'cursors.json');
    const timers = new FakeTimers();
    const store = await CursorStore.open(file, { timers, persistEveryMs: 1_000 });
    store.set('a', 1);
    await store.checkpoint();
    assert.deepEqual([store.flushCount, store.positionWrites], [1, 0], 'a new name goes to the JSON file');
    store.set('a', 2);
    await store.checkpoint(); // before the timer: the checkpoint writes the due positions itself
    assert.deepEqual([store.flushCount, store.positionWrites], [1, 1]);
    assert.deepEqual(await onDisk(file), [['a', 2]]);
    await store.checkpoint();
    assert.deepEqual([store.flushCount, store.positionWrites], [1, 1], 'nothing moved: nothing written');
    store.set('b', 3);
    await store.checkpoint();
    assert.equal(store.flushCount, 2);
    await store.close();
  });

  test('a torn slot falls back to the other one; a corrupt JSON file is recovered from the positions', async () => {
    const file = join(dirs.make(), 'cursors.json');
    const timers = new FakeTimers();
    const store = await CursorStore.open(file, { timers, persistEveryMs: 1 });
    store.set('a', 10);
    await store.flush();
    const json10 = readFileSync(file);
    store.set('a', 20); // generation 1: the second slot
    timers.advance(1);
    await until(() => store.positionWrites === 1, 'write 1');
    store.set('a', 30); // generation 2: the first slot
    timers.advance(1);
    await until(() => store.positionWrites === 2, 'write 2');
    await store.close();
    writeFileSync(file, json10); // as a kill would have left it: close() wrote 30 there too
    const positions = file.replace(/\.json$/, '.pos');
    assert.deepEqual(await onDisk(file), [['a', 30]]);
    // A write cut short: the newest slot's payload is half old bytes.
    const bytes = readFileSync(positions);
    bytes[30] = bytes[30]! ^ 0xff;
    writeFileSync(positions, bytes);
    assert.deepEqual(await onDisk(file), [['a', 20]], 'the older slot still checks');
    // JSON damaged as well: the positions bring the cursor back, flagged.
    writeFileSync(file, '{"version":1,"cursors":[["a",1');
    const reopened = await CursorStore.open(file, { timers: new FakeTimers() });
    assert.deepEqual([reopened.entries(), reopened.recoveredFromCorruption], [[['a', 20]], true]);
    // Both slots damaged: the JSON file alone counts.
    bytes[POSITION_SLOT_BYTES + 30] = bytes[POSITION_SLOT_BYTES + 30]! ^ 0xff;
    writeFileSync(positions, bytes);
    assert.deepEqual(await onDisk(file), []);
  });

  test('positions too many for a slot are left to the JSON file, which the next checkpoint rewrites', async () => {
    const file = join(dirs.make(), 'cursors.json');
    const timers = new FakeTimers();
    const store = await CursorStore.open(file, { timers, persistEveryMs: 1 });
    const names = Array.from({ length: 3_000 }, (_, i) => `emitter-with-a-long-name-${i}`);
    for (const n of names) store.set(n, 1);
    await store.flush();
    for (const n of names) store.set(n, 2);
    timers.advance(1);
    await store.checkpoint(); // waits for the write the timer started, which did not fit
    assert.equal(store.positionWrites, 0);
    assert.equal(store.flushCount, 2, 'the JSON file took the moves');
    assert.ok((await onDisk(file)).every(([, seq]) => seq === 2));
    await store.close();
  });

  test('polku validate (checkDurableDir) reads both files and says where the positions came from when cursors.json does not check', async () => {
    const dir = dirs.make();
    mkdirSync(join(dir, 'events')); // a log with nothing in it yet
    const file = join(dir, 'cursors.json');
    const timers = new FakeTimers();
    const store = await CursorStore.open(file, { timers, persistEveryMs: 1 });
    store.set('receiver', 5);
    await store.flush();
    store.set('receiver', 20);
    timers.advance(1);
    await until(() => store.positionWrites === 1, 'the positions write');
    const line = async (): Promise<string> =>
      describeCheck(await checkDurableDir(dir))
        .split('\n')
        .find((l) => l.includes('cursors '))!;
    assert.equal((await line()).trim(), 'cursors       receiver@20');
    writeFileSync(file, 'not json');
    assert.equal((await line()).trim(), 'cursors       cursors.json does not check; cursors.pos holds receiver@20');
    writeFileSync(file.replace(/\.json$/, '.pos'), '');
    assert.equal((await line()).trim(), 'cursors       cursors.json does not check: emitters restart at the end of the log');
    assert.equal(store.positionWrites, 1, 'the check wrote nothing');
    await store.close();
  });

  test('a failed positions write is reported by the next checkpoint as a StorageError, not retried on a timer; the next move writes again', async () => {
    const dir = dirs.make();
    const file = join(dir, 'cursors.json');
    const timers = new FakeTimers();
    const store = await CursorStore.open(file, { timers, persistEveryMs: 1 });
    store.set('a', 1);
    await store.flush();
    mkdirSync(join(dir, 'cursors.pos')); // a directory where the file should be: opening it to write fails
    store.set('a', 2);
    timers.advance(1);
    await assert.rejects(store.checkpoint(), (err: Error) => err instanceof StorageError && err.code === 'STORAGE_IO');
    assert.equal(timers.pending, 0, 'no retry timer');
    rmSync(join(dir, 'cursors.pos'), { recursive: true });
    store.set('a', 3);
    timers.advance(1);
    await until(() => store.positionWrites === 1, 'the write after the next move');
    await store.checkpoint();
    assert.deepEqual(await onDisk(file), [['a', 3]]);
    await store.close();
  });
});
