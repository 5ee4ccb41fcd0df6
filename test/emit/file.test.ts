import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventToJson } from '../../src/emit/event-json.js';
import { FileEmitter } from '../../src/emit/file.js';
import { PolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';

/** Events e000, e001, … whose JSON lines all have the same length. */
const events = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) =>
    Event.fromPartial({ id: `e${String(from + i).padStart(3, '0')}`, eventType: 'user.login', payload: Buffer.from('p'.repeat(100)) }),
  );
const LINE_BYTES = JSON.stringify(eventToJson(events(0, 1)[0]!)).length + 1;

function tempDir(t: { after(fn: () => void): void }): string {
  // The real path, so it compares equal to what /proc/self/fd links to.
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'polku-file-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The ids in one file, checking that it holds only whole lines. */
function idsIn(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  if (text === '') return [];
  assert.ok(text.endsWith('\n'), `${path} ends with a whole line`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => (JSON.parse(line) as { id: string }).id);
}

/** Rotated files oldest first, then the current one. */
function filesInOrder(path: string, rotated: number): string[] {
  return [...Array.from({ length: rotated }, (_, i) => `${path}.${rotated - i}`), path];
}

const idRange = (from: number, count: number) => events(from, count).map((e) => e.id);

test('each event is appended as one JSON line in the eventToJson shape', async (t) => {
  const path = join(tempDir(t), 'events.log');
  const file = new FileEmitter({ path });
  const batch = [
    Event.fromPartial({ id: 'a', eventType: 'x', timestampUnixNs: 1_700_000_000_123_456_789n, payload: Buffer.from('hello') }),
    Event.fromPartial({ id: 'b', eventType: 'y', payload: new Uint8Array([0xff]) }),
  ];
  assert.deepEqual(await file.emit(batch.slice(0, 1)), { status: 'success' });
  assert.deepEqual(await file.emit(batch.slice(1)), { status: 'success' });
  await file.shutdown();
  const lines = readFileSync(path, 'utf8').split('\n');
  assert.deepEqual(
    lines.slice(0, 2).map((l) => JSON.parse(l)),
    batch.map(eventToJson),
  );
  assert.equal(lines[2], '', 'the file ends with a newline');
  assert.equal(JSON.parse(lines[0]!).timestamp_unix_ns, '1700000000123456789');
});

test('rotation at maxBytes: every event once and in order, each file full but within maxBytes', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'events.log');
  const file = new FileEmitter({ path, maxBytes: 1024, maxFiles: 50 });
  for (let b = 0; b < 20; b++) assert.deepEqual(await file.emit(events(b * 2, 2)), { status: 'success' });
  await file.shutdown();
  const rotated = readdirSync(dir).length - 1;
  const perFile = Math.floor(1024 / (2 * LINE_BYTES)) * 2; // whole batches of 2 that fit
  assert.equal(rotated, Math.ceil(40 / perFile) - 1);
  const files = filesInOrder(path, rotated);
  assert.deepEqual(files.flatMap(idsIn), idRange(0, 40));
  for (const f of files.slice(0, -1)) {
    const size = statSync(f).size;
    assert.ok(size <= 1024, `${f} is within maxBytes`);
    assert.ok(size + 2 * LINE_BYTES > 1024, `${f} was rotated only when the next batch did not fit`);
  }
});

test('rotation keeps maxFiles rotated files and deletes the oldest', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'events.log');
  const file = new FileEmitter({ path, maxBytes: 1024, maxFiles: 2 });
  for (let b = 0; b < 20; b++) await file.emit(events(b * 2, 2));
  await file.shutdown();
  assert.deepEqual(readdirSync(dir).sort(), ['events.log', 'events.log.1', 'events.log.2']);
  const kept = filesInOrder(path, 2).flatMap(idsIn);
  // What is left is the newest events, none missing in between.
  assert.deepEqual(kept, idRange(40 - kept.length, kept.length));
  assert.ok(kept.length < 40, 'older events were deleted');
});

test('a batch bigger than maxBytes goes whole into a file of its own', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'events.log');
  const file = new FileEmitter({ path, maxBytes: 1024 });
  await file.emit(events(0, 1));
  const big = events(1, Math.ceil(2048 / LINE_BYTES));
  assert.deepEqual(await file.emit(big), { status: 'success' });
  await file.shutdown();
  assert.deepEqual(idsIn(`${path}.1`), ['e000']);
  assert.deepEqual(
    idsIn(path),
    big.map((e) => e.id),
  );
  assert.ok(statSync(path).size > 1024);
});

test('the size of a file already there counts toward maxBytes', async (t) => {
  const path = join(tempDir(t), 'events.log');
  writeFileSync(path, 'x'.repeat(1000) + '\n');
  const file = new FileEmitter({ path, maxBytes: 1024 });
  await file.emit(events(0, 1));
  await file.shutdown();
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'x'.repeat(1000) + '\n');
  assert.deepEqual(idsIn(path), ['e000']);
});

test('a missing parent directory is created', async (t) => {
  const path = join(tempDir(t), 'a', 'b', 'events.log');
  const file = new FileEmitter({ path });
  assert.deepEqual(await file.emit(events(0, 1)), { status: 'success' });
  await file.shutdown();
  assert.deepEqual(idsIn(path), ['e000']);
});

test('a path under a regular file is retryable, not a throw; once fixed the next batch goes through', async (t) => {
  const blocker = join(tempDir(t), 'blocker');
  writeFileSync(blocker, '');
  const path = join(blocker, 'events.log');
  const file = new FileEmitter({ path });
  const result = await file.emit(events(0, 1));
  assert.equal(result.status, 'retryable');
  assert.match((result as { error: string }).error, new RegExp(`^cannot open ${path}: (EEXIST|ENOTDIR)`));
  assert.deepEqual(file.health(), { healthy: false, message: (result as { error: string }).error });
  unlinkSync(blocker);
  mkdirSync(blocker);
  assert.deepEqual(await file.emit(events(0, 1)), { status: 'success' });
  assert.deepEqual(file.health(), { healthy: true, message: 'ok' });
  await file.shutdown();
  assert.deepEqual(idsIn(path), ['e000']);
});

test('a rotation that fails is retryable; the batch is written once rotation works', async (t) => {
  const path = join(tempDir(t), 'events.log');
  const file = new FileEmitter({ path, maxBytes: 1024, maxFiles: 1 });
  await file.emit(events(0, 5));
  mkdirSync(`${path}.1`); // a directory where the oldest rotated file would be deleted
  const result = await file.emit(events(5, 5));
  assert.equal(result.status, 'retryable');
  assert.match((result as { error: string }).error, new RegExp(`^cannot rotate ${path}: E(ISDIR|PERM)`));
  rmSync(`${path}.1`, { recursive: true });
  assert.deepEqual(await file.emit(events(5, 5)), { status: 'success' });
  await file.shutdown();
  assert.deepEqual(idsIn(`${path}.1`), idRange(0, 5));
  assert.deepEqual(idsIn(path), idRange(5, 5));
});

test('a full disk (ENOSPC) is retryable with the message', async () => {
  const file = new FileEmitter({ path: '/dev/full' });
  const result = await file.emit(events(0, 1));
  await file.shutdown();
  assert.equal(result.status, 'retryable');
  assert.match((result as { error: string }).error, /^cannot write \/dev\/full: ENOSPC: no space left on device/);
});

test('batches emitted without waiting are written whole and in order', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'events.log');
  const file = new FileEmitter({ path, maxBytes: 1024, maxFiles: 50 });
  const results = await Promise.all(Array.from({ length: 15 }, (_, b) => file.emit(events(b * 3, 3))));
  assert.ok(results.every((r) => r.status === 'success'));
  await file.shutdown();
  assert.deepEqual(filesInOrder(path, readdirSync(dir).length - 1).flatMap(idsIn), idRange(0, 45));
});

test('shutdown waits for the write in flight, closes the file and refuses later batches', async (t) => {
  const path = join(tempDir(t), 'events.log');
  const file = new FileEmitter({ path });
  const pending = file.emit(events(0, 2));
  await file.shutdown();
  assert.deepEqual(await pending, { status: 'success' });
  assert.deepEqual(idsIn(path), ['e000', 'e001']);
  // Linux shows this process's open files under /proc/self/fd.
  const open = readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // closed while listing
    }
  });
  assert.deepEqual(open, [], 'no descriptor of the file is left open');
  assert.deepEqual(await file.emit(events(2, 1)), { status: 'retryable', error: 'file emitter "file" is shut down' });
  assert.ok(existsSync(path));
});

test('invalid options are refused with a clear message', () => {
  const invalid = (pattern: RegExp) => (err: unknown) => err instanceof PolkuError && pattern.test(err.message);
  assert.throws(() => new FileEmitter({ path: '' }), invalid(/file emitter "file": path is empty/));
  assert.throws(() => new FileEmitter({ path: 'x', maxBytes: 0 }), invalid(/maxBytes must be a positive integer, got 0/));
  assert.throws(() => new FileEmitter({ path: 'x', maxFiles: -1 }), invalid(/maxFiles must be 0 or more, got -1/));
});
