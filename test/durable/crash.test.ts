import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { tmpfsMounts } from '../fixtures/durable-log-helpers.js';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { servePolku } from '../helpers/polku-process.js';
import { freePort, startReceiver } from '../helpers/receiver-process.js';

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts the receiver process on `port`; resolves once it listens. */
function received(sink: string): string[] {
  return existsSync(sink) ? readFileSync(sink, 'utf8').trim().split('\n').filter(Boolean) : [];
}

async function until(condition: () => boolean, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function durableGateway(dir: string, receiverPort: number, env: Record<string, string> = {}) {
  const gw = await servePolku(['--config', 'test/fixtures/durable-webhook.config.ts'], {
    POLKU_DURABLE: 'true',
    POLKU_DATA_DIR: dir,
    POLKU_TEST_RECEIVER: `http://127.0.0.1:${receiverPort}/events`,
    ...env,
  });
  children.push(gw.child);
  return gw;
}

const batchOf = (source: string, prefix: string, n: number) => ({
  source,
  events: {
    events: Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, event_type: 'crash.test', payload: Buffer.alloc(300, 7) })),
  },
});

describe('durable mode under kill -9', () => {
  test('every acknowledged event reaches a real receiver at least once across three kill -9 restarts under load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-crash-'));
    const sink = join(dir, 'received.txt');
    const receiverPort = await freePort();
    await startReceiver(receiverPort, sink, children);
    const acked = new Set<string>();
    let batchNo = 0;
    for (const killAfter of [7, 23, 41]) {
      const gw = await durableGateway(dir, receiverPort);
      const client = protoOnlyClient(gw.grpcPort);
      const stream = new AckStream(client);
      stream.status.catch(() => undefined);
      let acks = 0;
      // Four batches in flight at a time, so the kill lands with writes unacknowledged.
      const inFlight = new Set<Promise<unknown>>();
      while (acks < killAfter) {
        const p = stream.send(batchOf('load', `b${batchNo++}`, 20)).then((ack) => {
          acks++;
          for (const id of ack.event_ids) acked.add(id);
        });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p)).catch(() => undefined);
        if (inFlight.size >= 4) await Promise.race(inFlight).catch(() => undefined);
      }
      gw.child.kill('SIGKILL');
      await gw.exited;
      client.close();
    }
    // A last start delivers what the killed ones had not.
    const gw = await durableGateway(dir, receiverPort);
    await until(() => {
      const got = new Set(received(sink).map((l) => l.split(' ')[1]));
      for (const id of acked) if (!got.has(id)) return false;
      return true;
    }, `all ${acked.size} acknowledged events at the receiver`);
    assert.ok(acked.size >= (7 + 23 + 41) * 20, `${acked.size} events were acknowledged`);
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('a receiver down for a while gets everything once it is back, in order per source', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-down-'));
    const sink = join(dir, 'received.txt');
    const receiverPort = await freePort();
    const gw = await durableGateway(dir, receiverPort);
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const sent: Record<string, string[]> = { a: [], b: [] };
    for (let i = 0; i < 10; i++) {
      for (const source of ['a', 'b']) {
        const ack = await stream.send(batchOf(source, `${source}${i}`, 10));
        sent[source]!.push(...ack.event_ids);
      }
    }
    assert.equal(sent['a']!.length + sent['b']!.length, 200, 'all acknowledged while the receiver is down');
    assert.deepEqual(received(sink), []);
    await startReceiver(receiverPort, sink, children);
    await until(() => received(sink).length >= 200, 'delivery after the receiver came back');
    const lines = received(sink);
    for (const source of ['a', 'b']) {
      const order = lines.filter((l) => l.startsWith(`${source} `)).map((l) => l.split(' ')[1]);
      assert.deepEqual(order, sent[source], `order of source ${source}`);
    }
    await stream.end();
    client.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('a torn log tail is reported and cut; every event acknowledged before it is delivered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-torn-'));
    const sink = join(dir, 'received.txt');
    const receiverPort = await freePort();
    const first = await durableGateway(dir, receiverPort); // receiver down: everything stays in the log
    const client = protoOnlyClient(first.grpcPort);
    const stream = new AckStream(client);
    const acked: string[] = [];
    for (let i = 0; i < 5; i++) acked.push(...(await stream.send(batchOf('t', `t${i}`, 20))).event_ids);
    first.child.kill('SIGKILL');
    await first.exited;
    client.close();
    // A write the kill interrupted: a record header promising more bytes than follow.
    const segments = readdirSync(join(dir, 'events'))
      .filter((f) => f.endsWith('.log'))
      .sort();
    appendFileSync(join(dir, 'events', segments.at(-1)!), Buffer.from([0xff, 0x00, 0x00, 0x00, 0x12, 0x34]));
    await startReceiver(receiverPort, sink, children);
    const second = await durableGateway(dir, receiverPort);
    const report = JSON.parse(await second.line(/event log recovered with damage skipped/)) as { tornTailBytes: number };
    assert.equal(report.tornTailBytes, 6);
    await until(() => received(sink).length >= acked.length, 'delivery of the acknowledged events');
    assert.deepEqual(
      received(sink).map((l) => l.split(' ')[1]),
      acked,
    );
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);
  });
});

describe('durable mode on a full disk', () => {
  const tmpfs = tmpfsMounts();
  after(() => tmpfs.unmountAll());

  test('a real ENOSPC (a 2 MiB tmpfs): new events refused STORAGE_FULL, the stream stays open, every acked event delivered, and room made once they are', async () => {
    const mnt = tmpfs.mount('size=2m');
    const dir = join(mnt, 'data');
    const sinkDir = mkdtempSync(join(tmpdir(), 'polku-full-sink-'));
    const sink = join(sinkDir, 'received.txt');
    const receiverPort = await freePort();
    const env = { POLKU_TEST_SEGMENT_BYTES: String(128 * 1024) };
    // The receiver is down: nothing is delivered, so the log only grows until the disk is full.
    const gw = await durableGateway(dir, receiverPort, env);
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const acked: string[] = [];
    let refusal: { code: string; message: string } | undefined;
    for (let b = 0; b < 400 && refusal === undefined; b++) {
      const ack = await stream.send(batchOf('full', `f${b}`, 20));
      acked.push(...ack.event_ids);
      refusal = ack.errors[0];
    }
    assert.ok(refusal, 'the disk filled up before 400 batches of 20 × 300 B');
    assert.equal(refusal.code, 'STORAGE_FULL', refusal.message);
    assert.ok(acked.length > 0);
    // The stream is still open and still answers: a batch of the same size is refused the same
    // way (the failed write was cut back, so the free space is what it was).
    const next = await stream.send(batchOf('full', 'after', 20));
    assert.deepEqual(next.event_ids, []);
    assert.deepEqual([...new Set(next.errors.map((e) => e.code))], ['STORAGE_FULL']);
    assert.ok(gw.child.exitCode === null, 'the gateway is still running');
    client.close();
    gw.child.kill('SIGKILL');
    await gw.exited;

    // Back with the receiver up, on the same full disk: every acknowledged event arrives.
    await startReceiver(receiverPort, sink, children);
    const second = await durableGateway(dir, receiverPort, env);
    await until(() => received(sink).length >= acked.length, 'delivery of every acknowledged event');
    assert.deepEqual(
      received(sink).map((l) => l.split(' ')[1]),
      acked,
    );
    // Delivered segments then give up their room (the disk is full, though the log is far under
    // its size bound): new events are refused at first, accepted within a few maintenance rounds.
    const client2 = protoOnlyClient(second.grpcPort);
    const stream2 = new AckStream(client2);
    let accepted: string[] = [];
    for (let i = 0; accepted.length === 0; i++) {
      if (i > 100) throw new Error('the disk never made room for new events');
      accepted = (await stream2.send(batchOf('full', `later${i}`, 20))).event_ids;
      if (accepted.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    await until(() => received(sink).some((l) => l.endsWith(accepted.at(-1)!)), 'delivery of the events accepted after room was made');
    client2.close();
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0, 'with room made, the cursors are persisted at shutdown');
  });
});
