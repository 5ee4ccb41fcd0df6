import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CursorStore } from '../../src/buffer/durable/cursor-store.js';
import { FakeTimers } from '../../src/testing/index.js';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { servePolku } from '../helpers/polku-process.js';
import { freePort, startReceiver } from '../helpers/receiver-process.js';

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function received(sink: string): string[] {
  return existsSync(sink) ? readFileSync(sink, 'utf8').trim().split('\n').filter(Boolean) : [];
}

async function until(condition: () => boolean | Promise<boolean>, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The receiver's cursor as a restart would read it from disk now (both cursor files merged). */
async function persistedCursor(dir: string): Promise<number | undefined> {
  return (await CursorStore.open(join(dir, 'cursors.json'), { timers: new FakeTimers() })).get('receiver');
}

async function durableGateway(dir: string, receiverPort: number) {
  const gw = await servePolku(['--config', 'test/fixtures/durable-webhook.config.ts'], {
    POLKU_DURABLE: 'true',
    POLKU_DATA_DIR: dir,
    POLKU_TEST_RECEIVER: `http://127.0.0.1:${receiverPort}/events`,
  });
  children.push(gw.child);
  return gw;
}

async function sendBatches(port: number, prefix: string, batches: number): Promise<{ acked: string[]; close: () => void }> {
  const client = protoOnlyClient(port);
  const stream = new AckStream(client);
  stream.status.catch(() => undefined);
  const acked: string[] = [];
  for (let b = 0; b < batches; b++) {
    const events = Array.from({ length: 20 }, (_, i) => ({
      id: `${prefix}-${b}-${i}`,
      event_type: 'cursor.test',
      payload: Buffer.alloc(64, 1),
    }));
    acked.push(...(await stream.send({ source: prefix, events: { events } })).event_ids);
  }
  return { acked, close: () => client.close() };
}

describe('cursor persistence through a real process', () => {
  test('after kill -9 the gateway resumes from the cursor it persisted after delivery: nothing acknowledged lost, nothing resent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-cursor-resume-'));
    const sink = join(dir, 'received.txt');
    const receiverPort = await freePort();
    await startReceiver(receiverPort, sink, children);

    const first = await durableGateway(dir, receiverPort);
    const before = await sendBatches(first.grpcPort, 'before', 5);
    assert.equal(before.acked.length, 100);
    await until(() => received(sink).length >= 100, 'delivery of the first 100 events');
    // Seqs start at 1: past all 100 is 101. The positions file gets there within
    // cursorPersistMs of the last delivery, long before the once-a-second maintenance.
    await until(async () => (await persistedCursor(dir)) === 101, 'the persisted cursor to reach 101');
    const json = JSON.parse(readFileSync(join(dir, 'cursors.json'), 'utf8')) as { cursors: Array<[string, number]> };
    assert.deepEqual(json.cursors, [['receiver', 1]], 'the JSON file still holds the start position: the positions file carried the move');
    first.child.kill('SIGKILL');
    await first.exited;
    before.close();

    const second = await durableGateway(dir, receiverPort);
    const afterKill = await sendBatches(second.grpcPort, 'after', 5);
    await until(() => received(sink).length >= 200, 'delivery of the next 100 events');
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);
    afterKill.close();

    const ids = received(sink).map((l) => l.split(' ')[1]!);
    assert.equal(ids.length, 200, 'each event once: the restart resumed exactly at the persisted cursor');
    assert.deepEqual(new Set(ids), new Set([...before.acked, ...afterKill.acked]), 'every acknowledged event delivered');
    assert.equal(await persistedCursor(dir), 201);
  });
});
