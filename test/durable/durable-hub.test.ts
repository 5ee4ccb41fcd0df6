import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { EmitResults, type EmitResult, type Emitter } from '../../src/emit/emitter.js';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import type { IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import { DurableMetrics } from '../../src/delivery/durable-metrics.js';
import { hub } from '../../src/hub/builder.js';
import { filter } from '../../src/middleware/filter.js';
import { transform } from '../../src/middleware/transform.js';
import { decodeIngestBatch } from '../../src/receive/polku-gateway/message-codec.js';
import { DurableAdmin } from '../../src/delivery/durable-admin.js';
import type { Hub } from '../../src/hub/hub.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { decodeEventRecord } from '../../src/buffer/durable/event-record.js';
import { StorageError } from '../../src/buffer/durable/segment-log.js';
import { intakeOfBatch } from '../../src/hub/polku-messages.js';
import { GatedEmitter } from '../helpers/gated-emitter.js';
import { AckStream, startGateway } from '../helpers/gateway-harness.js';

const dirs: string[] = [];
const freshDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'polku-durable-'));
  dirs.push(d);
  return d;
};

const batch = (events: Array<Partial<Event>>): IngestBatch => ({
  source: 'agent',
  cluster: '',
  payload: { $case: 'events', value: { events: events.map((e) => Event.fromPartial(e)) } },
});
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, eventType: 't' }));

async function started(h: Hub): Promise<Hub> {
  await h.start();
  return h;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Answers from a script; records every batch it saw. */
class ScriptedEmitter implements Emitter {
  readonly seen: string[][] = [];
  constructor(
    readonly name: string,
    private readonly answer: (ids: string[], call: number) => EmitResult,
  ) {}
  emit(events: readonly Event[]): Promise<EmitResult> {
    const batchIds = events.map((e) => e.id);
    this.seen.push(batchIds);
    return Promise.resolve(this.answer(batchIds, this.seen.length));
  }
}

describe('durable mode', () => {
  test('an Ack comes after the commit: acknowledged events are in the log and reach the emitter', async () => {
    const dir = freshDir();
    const memory = new InMemoryEmitter();
    const h = await started(hub().emitter(memory).durable({ dir, fsync: false }).build());
    const ack = await h.processBatch(batch(ids('a', 5)));
    assert.deepEqual(ack.eventIds, ['a0', 'a1', 'a2', 'a3', 'a4']);
    const stored = await h.admin!.store.read(1, 10);
    assert.deepEqual(
      stored.map((s) => s.event.id),
      ack.eventIds,
    );
    assert.deepEqual(stored[0]!.targets, ['memory']);
    await memory.waitForCount(5);
    await h.drain(1_000);
  });

  test('after a restart each emitter resumes at its cursor: nothing acked is lost, nothing delivered is repeated', async () => {
    const dir = freshDir();
    const held = new GatedEmitter('slow');
    const fast = new InMemoryEmitter({ name: 'fast' });
    const first = await started(hub().emitter(held).emitter(fast).delivery({ batchSize: 10 }).durable({ dir, fsync: false }).build());
    const ack = await first.processBatch(batch(ids('r', 30)));
    assert.equal(ack.eventIds.length, 30);
    await fast.waitForCount(30);
    assert.equal(held.calls, 1, 'the slow emitter holds its first batch');
    await first.drain(50); // deadline passes: the slow emitter's events stay in the log

    const slowAgain = new InMemoryEmitter({ name: 'slow' });
    const fastAgain = new InMemoryEmitter({ name: 'fast' });
    const second = await started(
      hub().emitter(slowAgain).emitter(fastAgain).delivery({ batchSize: 10 }).durable({ dir, fsync: false }).build(),
    );
    await slowAgain.waitForCount(30);
    assert.deepEqual(
      slowAgain.events.map((e) => e.id),
      ack.eventIds,
      'the slow emitter gets all 30, in order',
    );
    assert.equal(fastAgain.count, 0, 'the fast emitter had them all already');
    await second.drain(1_000);
  });

  test('a resend of an accepted id is acknowledged but stored once, also after a restart', async () => {
    const dir = freshDir();
    const memory = new InMemoryEmitter();
    const registry = createRegistry();
    const h = await started(hub().emitter(memory).durable({ dir, fsync: false }).build({ registry }));
    await h.processBatch(batch([{ id: 'once' }, { metadata: { idempotency_key: 'k-1' } }]));
    const again = await h.processBatch(batch([{ id: 'once' }, { metadata: { idempotency_key: 'k-1' } }, { id: 'new' }]));
    assert.equal(again.eventIds.length, 3, 'all acknowledged');
    assert.equal(again.errors.length, 0);
    assert.equal(h.stats().durable!.nextSeq, 4, 'only three records stored');
    const resends = await registry.getSingleMetric('polku_idempotent_resends_total')!.get();
    assert.equal(resends.values[0]!.value, 2);
    await h.drain(1_000);
    const h2 = await started(hub().emitter(new InMemoryEmitter()).durable({ dir, fsync: false }).build());
    await h2.processBatch(batch([{ id: 'once' }]));
    assert.equal(h2.stats().durable!.nextSeq, 4, 'the window survived the restart');
    await h2.drain(1_000);
  });

  test('the window keeps the last idempotencyMaxKeys keys, and a restart rebuilds exactly those', async () => {
    const dir = freshDir();
    const options = { dir, fsync: false, idempotencyMaxKeys: 2 };
    const h = await started(hub().emitter(new InMemoryEmitter()).durable(options).build());
    await h.processBatch(batch(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id }))));
    await h.processBatch(batch([{ id: 'e' }, { id: 'a' }])); // 'e' is a resend; 'a' fell out of the window
    assert.equal(h.stats().durable!.nextSeq, 7, 'a stored again, e not');
    await h.drain(1_000);
    const h2 = await started(hub().emitter(new InMemoryEmitter()).durable(options).build());
    await h2.processBatch(batch([{ id: 'a' }, { id: 'e' }, { id: 'd' }])); // the last two keys stored were e, a
    assert.equal(h2.stats().durable!.nextSeq, 8, 'only d is stored again: a and e were the window rebuilt from the log');
    await h2.drain(1_000);
  });

  test('events sent without an id are never taken for resends of each other', async () => {
    const dir = freshDir();
    const h = await started(hub().emitter(new InMemoryEmitter()).durable({ dir, fsync: false }).build());
    const ack = await h.processBatch(batch([{ eventType: 'x' }, { eventType: 'x' }, { eventType: 'x' }]));
    assert.equal(new Set(ack.eventIds).size, 3);
    assert.equal(h.stats().durable!.nextSeq, 4);
    await h.drain(1_000);
  });

  test('only retryable failures are resent; a refused event is dead-lettered with its reason; replay brings it back', async () => {
    const dir = freshDir();
    let fixed = false;
    const flaky = new ScriptedEmitter('flaky', (_batchIds, call) => {
      if (fixed) return EmitResults.success();
      if (call === 1) {
        return EmitResults.partial([
          { index: 1, retryable: true, error: 'busy' },
          { index: 2, retryable: false, error: 'schema rejected' },
        ]);
      }
      return EmitResults.success();
    });
    const h = await started(hub().emitter(flaky).durable({ dir, fsync: false }).build());
    await h.processBatch(batch(ids('p', 4)));
    await until(() => flaky.seen.length >= 2, 'the retry');
    assert.deepEqual(flaky.seen.slice(0, 2), [['p0', 'p1', 'p2', 'p3'], ['p1']]);
    await until(() => h.stats().emitters[0]!.depth === 0, 'the cursor to pass the batch');
    const letters = await h.admin!.listDeadLetters();
    assert.deepEqual(
      letters.map((d) => [d.event.id, d.emitter, d.reason]),
      [['p2', 'flaky', 'schema rejected']],
    );
    fixed = true;
    const report = await h.admin!.replayDeadLetters();
    assert.deepEqual(report, { matched: 1, delivered: 1, keptForMissingEmitter: 0 });
    assert.deepEqual(flaky.seen.at(-1), ['p2']);
    assert.deepEqual(await h.admin!.listDeadLetters(), []);
    await h.drain(1_000);
  });

  test('a dead letter replayed into the same refusal comes back once, with a new id; one for a missing emitter is kept', async () => {
    const dir = freshDir();
    const refusing = () =>
      new ScriptedEmitter('strict', (batchIds) =>
        EmitResults.partial(batchIds.map((_, index) => ({ index, retryable: false, error: 'still invalid' }))),
      );
    const first = await started(hub().emitter(refusing()).durable({ dir, fsync: false }).build());
    await first.processBatch(batch(ids('d', 2)));
    await until(() => first.stats().emitters[0]!.depth === 0, 'both events to be dead-lettered');
    const before = await first.admin!.listDeadLetters();
    assert.deepEqual(
      before.map((d) => d.event.id),
      ['d0', 'd1'],
    );
    const inspected = await first.admin!.inspectDeadLetter(before[1]!.id);
    assert.equal(inspected?.event.id, 'd1');
    assert.equal(inspected?.reason, 'still invalid');
    assert.equal(await first.admin!.inspectDeadLetter(before[1]!.id + 100), undefined);

    const again = await first.admin!.replayDeadLetters();
    assert.deepEqual(again, { matched: 2, delivered: 0, keptForMissingEmitter: 0 });
    const after = await first.admin!.listDeadLetters();
    assert.deepEqual(
      after.map((d) => d.event.id),
      ['d0', 'd1'],
      'each listed once, not twice',
    );
    assert.ok(
      after.every((d) => d.id > before[1]!.id),
      'the refused replays are new letters',
    );
    assert.equal(await first.admin!.inspectDeadLetter(before[0]!.id), undefined, 'the old letters are purged');
    await first.drain(1_000);

    // The same directory with a pipeline that no longer has "strict": its letters stay.
    const other = new InMemoryEmitter({ name: 'other' });
    const second = await started(hub().emitter(other).durable({ dir, fsync: false }).build());
    const kept = await second.admin!.replayDeadLetters();
    assert.deepEqual(kept, { matched: 0, delivered: 0, keptForMissingEmitter: 2 });
    const still = await second.admin!.listDeadLetters();
    assert.deepEqual(
      still.map((d) => [d.event.id, d.emitter, d.reason]),
      [
        ['d0', 'strict', 'still invalid'],
        ['d1', 'strict', 'still invalid'],
      ],
    );
    assert.equal(other.events.length, 0);
    await second.drain(1_000);
  });

  test('events still failing after maxAttempts go to the dead letters and the queue moves on', async () => {
    const dir = freshDir();
    const down = new ScriptedEmitter('down', (batchIds) =>
      batchIds[0] === 'later' ? EmitResults.success() : EmitResults.retryable('connection refused', 1),
    );
    const registry = createRegistry();
    const h = await started(hub().emitter(down).durable({ dir, fsync: false, maxAttempts: 3 }).build({ registry }));
    await h.processBatch(batch(ids('x', 2)));
    await h.processBatch(batch([{ id: 'later' }]));
    await until(() => down.seen.some((b) => b[0] === 'later'), 'the next batch');
    assert.deepEqual(down.seen.slice(0, 3), [
      ['x0', 'x1'],
      ['x0', 'x1'],
      ['x0', 'x1'],
    ]);
    const letters = await h.admin!.listDeadLetters();
    assert.deepEqual(
      letters.map((d) => [d.event.id, d.attempts]),
      [
        ['x0', 3],
        ['x1', 3],
      ],
    );
    const dead = await registry.getSingleMetric('polku_dead_letters_total')!.get();
    assert.equal(dead.values.find((v) => v.labels['reason'] === 'retries_exhausted')?.value, 2);
    await h.drain(1_000);
  });

  test('a replay re-sends the events received in a time range to the emitter named', async () => {
    const dir = freshDir();
    const a = new InMemoryEmitter({ name: 'a' });
    const b = new InMemoryEmitter({ name: 'b' });
    const h = await started(hub().emitter(a).emitter(b).durable({ dir, fsync: false }).build());
    const before = Date.now();
    await h.processBatch(batch(ids('t', 3)));
    await a.waitForCount(3);
    await b.waitForCount(3);
    const report = await h.admin!.replay({ fromMs: before, toMs: Date.now(), emitter: 'b' });
    assert.deepEqual(report, { matched: 3, delivered: 3 });
    assert.equal(a.count, 3);
    assert.deepEqual(
      b.events.map((e) => e.id),
      ['t0', 't1', 't2', 't0', 't1', 't2'],
    );
    await h.drain(1_000);
  });

  test('when the log is full of undelivered events new ones are refused STORAGE_FULL, and accepted again once delivered', async () => {
    const dir = freshDir();
    const gate = new GatedEmitter('held');
    const h = await started(hub().emitter(gate).durable({ dir, fsync: false, maxBytes: 4_000, segmentBytes: 1_000 }).build());
    let refused: string[] = [];
    for (let i = 0; i < 40 && refused.length === 0; i++) {
      const ack = await h.processBatch(batch([{ id: `f${i}`, payload: Buffer.alloc(200) }]));
      refused = ack.errors.map((e) => e.code);
    }
    assert.deepEqual(refused, ['STORAGE_FULL']);
    gate.open();
    await until(() => h.stats().emitters[0]!.depth === 0, 'delivery');
    await h.admin!.store.maintain(['held']);
    const ack = await h.processBatch(batch([{ id: 'after', payload: Buffer.alloc(200) }]));
    assert.deepEqual(ack.eventIds, ['after']);
    await h.drain(1_000);
  });

  test("events arriving over gRPC are stored as the bytes sent plus intake's fill-ins, and read back from disk as accepted", async () => {
    const dir = freshDir();
    const held = new GatedEmitter('memory');
    const gw = await startGateway(hub().emitter(held).durable({ dir, fsync: false }), {}, 100);
    const stream = new AckStream(gw.client);
    const ack = await stream.send({
      source: 'agent-w',
      events: {
        events: [
          {
            id: 'full',
            timestamp_unix_ns: '1764560000123456789',
            source: 'kubelet',
            event_type: 'pod.started',
            metadata: { ns: 'default', ключ: 'värde' },
            payload: Buffer.from([0, 1, 255]),
            route_to: ['memory'],
            severity: 4,
            outcome: 2,
          },
          { event_type: 'bare' }, // no id, timestamp or source: intake fills all three
          { id: 'no-source', metadata: { idempotency_key: 'k-1' } },
        ],
      },
    });
    assert.equal(ack.event_ids.length, 3);
    await until(() => held.calls === 1, 'the held delivery');
    const accepted = held.batches[0]!;
    assert.deepEqual(
      accepted.map((e) => e.id),
      ack.event_ids,
    );
    assert.equal(accepted[1]!.source, 'agent-w');
    assert.notEqual(accepted[1]!.timestampUnixNs, 0n);
    await stream.end();
    await gw.stop(); // the gate stays shut: all three stay in the log

    const fromDisk = new InMemoryEmitter({ name: 'memory' });
    const second = await started(hub().emitter(fromDisk).durable({ dir, fsync: false }).build());
    await fromDisk.waitForCount(3);
    const plain = (e: Event) => ({ ...e, payload: Buffer.from(e.payload) });
    assert.deepEqual(fromDisk.events.map(plain), accepted.map(plain));
    await second.drain(1_000);
  });

  test("a repeat of a key within one batch shares its first event's fate: refused when the commit fails", async () => {
    const dir = freshDir();
    const memory = new InMemoryEmitter();
    const h = await started(hub().emitter(memory).durable({ dir, fsync: false }).build());
    const store = h.admin!.store;
    const commit = store.commit.bind(store);
    // The disk failing under one commit (the real failure is covered by the tmpfs tests).
    store.commit = () => Promise.reject(new StorageError('STORAGE_IO', 'EIO: i/o error, write'));
    const failed = await h.processBatch(
      batch([{ id: 'x' }, { id: 'x' }, { metadata: { idempotency_key: 'k' } }, { metadata: { idempotency_key: 'k' } }]),
    );
    assert.deepEqual(failed.eventIds, [], 'nothing was stored, so nothing is acknowledged, repeats included');
    assert.deepEqual(
      failed.errors.map((e) => e.code),
      ['STORAGE_ERROR', 'STORAGE_ERROR', 'STORAGE_ERROR', 'STORAGE_ERROR'],
    );
    store.commit = commit;
    const again = await h.processBatch(batch([{ id: 'x' }, { id: 'x' }]));
    assert.deepEqual(again.eventIds, ['x', 'x']);
    await memory.waitForCount(1);
    await h.drain(1_000);
    assert.deepEqual(
      memory.events.map((e) => e.id),
      ['x'],
      'stored once',
    );
  });

  test('resends older than the in-memory events are confirmed from the log; one whose record is gone is stored again', async () => {
    const dir = freshDir();
    const memory = new InMemoryEmitter();
    const registry = createRegistry();
    const h = await started(
      hub().emitter(memory).durable({ dir, fsync: false, cacheEvents: 4, segmentBytes: 1_000, maxBytes: 3_000 }).build({ registry }),
    );
    const filler = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `f${from + i}`, payload: Buffer.alloc(150) }));
    await h.processBatch(batch([{ id: 'gone', payload: Buffer.alloc(150) }])); // seq 1
    let stored = 1;
    while (!h.stats().durable!.full) stored += (await h.processBatch(batch(filler(stored, 3)))).eventIds.length;
    await memory.waitForCount(stored);
    await h.admin!.store.maintain(['memory']); // the log needs room: delivered segments go, 'gone' among them
    assert.ok(h.stats().durable!.firstSeq > 1, "'gone' was deleted");
    assert.deepEqual((await h.processBatch(batch([{ id: 'kept' }]))).eventIds, ['kept']);
    const keptSeq = h.stats().durable!.nextSeq - 1;
    await h.processBatch(batch(ids('small', 6))); // 'kept' leaves the 4 in-memory events
    await memory.waitForCount(stored + 7);
    assert.ok(h.stats().durable!.firstSeq <= keptSeq, "'kept' is in the log");

    const ack = await h.processBatch(batch([{ id: 'kept' }, { id: 'gone' }]));
    assert.deepEqual([...ack.eventIds].sort(), ['gone', 'kept']);
    await memory.waitForCount(stored + 8);
    await h.drain(1_000);
    const delivered = memory.events.map((e) => e.id);
    assert.equal(delivered.filter((id) => id === 'kept').length, 1, "'kept' is still in the log: a resend, not stored again");
    assert.equal(delivered.filter((id) => id === 'gone').length, 2, "'gone' cannot be checked: stored again (a duplicate, not a loss)");
    const resends = (await registry.getSingleMetricAsString('polku_idempotent_resends_total')).match(/ (\d+)$/m)?.[1];
    assert.equal(resends, '1');
  });

  test('a window match whose stored key differs (a hash collision) is stored, not acknowledged as a resend', async () => {
    const dir = freshDir();
    const memory = new InMemoryEmitter();
    const h = await started(hub().emitter(memory).durable({ dir, fsync: false, cacheEvents: 4 }).build());
    await h.processBatch(batch([{ id: 'a' }]));
    await h.processBatch(batch(ids('f', 8))); // 'a' (seq 1) leaves the in-memory events
    await h.processBatch(batch([{ id: 'b' }])); // seq 10, in memory
    // Every key now hashes as 'a' (seq 1, checked on disk) or 'b' (seq 10, checked in memory) would.
    const window = (h.admin!.store as unknown as { keys: { candidate: (key: string) => number } }).keys;
    window.candidate = (key) => (key.startsWith('on-disk') ? 1 : 10);
    const ack = await h.processBatch(batch([{ id: 'on-disk-lookalike' }, { id: 'in-memory-lookalike' }, { id: 'b' }]));
    assert.deepEqual([...ack.eventIds].sort(), ['b', 'in-memory-lookalike', 'on-disk-lookalike']);
    await memory.waitForCount(12);
    await h.drain(1_000);
    const got = memory.events.map((e) => e.id);
    assert.ok(got.includes('on-disk-lookalike') && got.includes('in-memory-lookalike'), 'both lookalikes stored and delivered');
    assert.equal(got.filter((id) => id === 'b').length, 1, "the real resend of 'b' was not stored again");
  });

  test('replays read and send a chunk at a time, so a long range or many dead letters never sit in memory at once', async () => {
    const dir = freshDir();
    const ops: string[] = [];
    let refusing = true;
    const emitter = new ScriptedEmitter('e', (batchIds) => {
      ops.push(`emit ${batchIds[0]}..${batchIds[batchIds.length - 1]}`);
      return refusing
        ? EmitResults.partial(batchIds.map((_, index) => ({ index, retryable: false, error: 'refused' })))
        : EmitResults.success();
    });
    const registry = createRegistry();
    const h = await started(hub().emitter(emitter).delivery({ batchSize: 25 }).durable({ dir, fsync: false }).build({ registry }));
    const before = Date.now();
    await h.processBatch(batch(ids('r', 25)));
    await until(() => h.stats().emitters[0]!.depth === 0, 'all 25 dead-lettered');
    const store = h.admin!.store;
    const admin = new DurableAdmin(
      store,
      () => h.admin!.queues(),
      new DurableMetrics(
        createRegistry(),
        () => store,
        () => [],
      ),
      10,
    );
    const read = store.read.bind(store);
    store.read = (from, limit) => (ops.push(`read ${from}+${limit}`), read(from, limit));
    const list = store.listDeadLetters.bind(store);
    store.listDeadLetters = (limit, fromId) => (ops.push(`letters ${fromId}+${limit}`), list(limit, fromId));

    refusing = false;
    ops.length = 0;
    const letters = await admin.replayDeadLetters();
    assert.deepEqual(letters, { matched: 25, delivered: 25, keptForMissingEmitter: 0 });
    assert.deepEqual(ops, ['letters 1+10', 'emit r0..r9', 'letters 11+10', 'emit r10..r19', 'letters 21+10', 'emit r20..r24']);
    assert.deepEqual(await h.admin!.listDeadLetters(), [], 'every replayed letter purged');

    ops.length = 0;
    const range = await admin.replay({ fromMs: before, toMs: Date.now() });
    assert.deepEqual(range, { matched: 25, delivered: 25 });
    assert.deepEqual(ops, ['read 1+10', 'emit r0..r9', 'read 11+10', 'emit r10..r19', 'read 21+5', 'emit r20..r24']);
    await h.drain(1_000);
  });

  test('with middleware that only drop events, events are stored as the bytes they came in; a step that edits them has them encoded afresh', async () => {
    // Each event carries field 111, which this gateway does not know: only its wire bytes have it.
    const unknownField = Buffer.from([0xf8, 0x06, 0x01]);
    const w = new BinaryWriter().uint32(10).string('agent').uint32(34).fork();
    for (const id of ['keep-1', 'drop', 'keep-2'])
      w.uint32(10).bytes(
        Buffer.concat([Event.encode(Event.fromPartial({ id, eventType: 't', source: 's', timestampUnixNs: 5n })).finish(), unknownField]),
      );
    const bytes = w.join().finish();
    const received = () => decodeIngestBatch(bytes);
    const storedBodies = async (h: Hub) => (await h.admin!.store.log.read(1, 10)).map((r) => Buffer.from(r.payload));

    const dropping = await started(
      hub()
        .middleware(filter((e) => e.id !== 'drop'))
        .emitter(new InMemoryEmitter())
        .durable({ dir: freshDir(), fsync: false })
        .build(),
    );
    const { batch: b1, wire: w1 } = received();
    const ack = await dropping.submit(intakeOfBatch(b1, 1n, w1));
    assert.deepEqual(ack.eventIds, ['keep-1', 'keep-2']);
    const kept = await storedBodies(dropping);
    assert.equal(kept.length, 2);
    assert.ok(
      kept.every((body) => body.subarray(-3).equals(unknownField)),
      'stored as sent, unknown field and all',
    );
    assert.deepEqual(
      kept.map((body) => decodeEventRecord(body).event.id),
      ['keep-1', 'keep-2'],
      'each survivor stored as its own bytes',
    );
    await dropping.drain(1_000);

    const editing = await started(
      hub()
        .middleware(transform((e) => ((e.metadata['env'] = 'prod'), e)))
        .emitter(new InMemoryEmitter())
        .durable({ dir: freshDir(), fsync: false })
        .build(),
    );
    const { batch: b2, wire: w2 } = received();
    await editing.submit(intakeOfBatch(b2, 1n, w2));
    const edited = await storedBodies(editing);
    assert.equal(edited.length, 3);
    assert.ok(
      edited.every((body) => !body.subarray(-3).equals(unknownField)),
      'encoded afresh',
    );
    assert.deepEqual(
      (await editing.admin!.store.read(1, 10)).map((s) => s.event.metadata),
      [{ env: 'prod' }, { env: 'prod' }, { env: 'prod' }],
    );
    await editing.drain(1_000);
  });
});
