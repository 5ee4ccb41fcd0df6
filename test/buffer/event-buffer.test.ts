import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBuffer, type AdmissionTarget, type EventBufferOptions } from '../../src/buffer/event-buffer.js';
import type { BufferedEvent } from '../../src/buffer/buffered-event.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { flushPromises } from '../../src/testing/index.js';

/** An array-backed stand-in for an emitter queue: records what it was given. */
class FakeQueue implements AdmissionTarget {
  /** Every event ever enqueued, in order. */
  readonly enqueued: BufferedEvent[] = [];
  /** Events still pending (not taken for delivery). */
  pending: BufferedEvent[] = [];

  enqueue(buffered: BufferedEvent): void {
    this.enqueued.push(buffered);
    this.pending.push(buffered);
  }

  oldestPending(): BufferedEvent | undefined {
    return this.pending[0];
  }

  dropOldestPending(): void {
    this.pending.shift();
  }

  /** Takes every pending event out, as if a batch went in flight. */
  takeAll(): BufferedEvent[] {
    const taken = this.pending;
    this.pending = [];
    return taken;
  }
}

function bufferOf(options: Partial<EventBufferOptions> = {}): EventBuffer {
  return new EventBuffer({ capacity: 100, maxBytes: 100_000, overflow: 'drop_oldest', ...options });
}

const ev = (id: string) => Event.fromPartial({ id });

test('admitting counts the event and its bytes and hands it to every target', () => {
  const buffer = bufferOf();
  const a = new FakeQueue();
  const b = new FakeQueue();
  const admitted = buffer.admit(ev('e1'), 120, [a, b]);
  assert.equal(buffer.size, 1);
  assert.equal(buffer.bytes, 120);
  assert.equal(admitted.refs, 2);
  assert.equal(admitted.released, false);
  assert.equal(admitted.event.id, 'e1');
  assert.deepEqual(a.enqueued, [admitted]);
  assert.deepEqual(b.enqueued, [admitted]);
});

test('admission order is recorded as increasing sequence numbers', () => {
  const buffer = bufferOf();
  const q = new FakeQueue();
  const seqs = ['a', 'b', 'c'].map((id) => buffer.admit(ev(id), 1, [q]).seq);
  assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!);
});

test('settling the only reference frees the event count and bytes', () => {
  const buffer = bufferOf();
  const q = new FakeQueue();
  const first = buffer.admit(ev('a'), 100, [q]);
  buffer.admit(ev('b'), 50, [q]);
  buffer.settle(first);
  assert.equal(buffer.size, 1);
  assert.equal(buffer.bytes, 50);
  assert.equal(first.released, true);
});

test('an event routed to two targets is freed only after both settle', () => {
  const buffer = bufferOf();
  const shared = buffer.admit(ev('shared'), 80, [new FakeQueue(), new FakeQueue()]);
  buffer.settle(shared);
  assert.equal(buffer.size, 1, 'still held for the second target');
  assert.equal(buffer.bytes, 80);
  assert.equal(shared.released, false);
  buffer.settle(shared);
  assert.equal(buffer.size, 0);
  assert.equal(buffer.bytes, 0);
  assert.equal(shared.released, true);
});

test('an event waiting in two queues frees its room only once both have given it up', () => {
  const buffer = bufferOf({ capacity: 2 });
  const q = new FakeQueue();
  const other = new FakeQueue();
  buffer.setEvictionSources([q, other]);
  const victim = buffer.admit(ev('old'), 10, [q, other]);
  buffer.admit(ev('new'), 10, [q]);
  assert.deepEqual(buffer.evictFor(10), { evicted: 2, fits: true }, 'out of q, then out of other');
  assert.equal(victim.released, true);
  assert.deepEqual(
    q.pending.map((b) => b.event.id),
    ['new'],
  );
  assert.deepEqual(other.pending, []);
  assert.equal(buffer.size, 1);
  assert.equal(buffer.bytes, 10);
});

test('evicting an event another queue has in flight does not free its room until that queue is done', () => {
  const buffer = bufferOf({ capacity: 1 });
  const waiting = new FakeQueue();
  const sending = new FakeQueue();
  buffer.setEvictionSources([waiting, sending]);
  const shared = buffer.admit(ev('shared'), 10, [waiting, sending]);
  sending.takeAll(); // in flight to the other emitter
  assert.deepEqual(buffer.evictFor(10), { evicted: 1, fits: false }, 'given up by one queue, still held by the other');
  assert.deepEqual(waiting.pending, []);
  assert.equal(shared.released, false);
  assert.equal(buffer.size, 1);
  buffer.settle(shared); // the other emitter finished it
  assert.equal(buffer.size, 0);
  assert.equal(buffer.hasRoomFor(10), true);
});

test('hasRoomFor is false once the event count reaches capacity', () => {
  const buffer = bufferOf({ capacity: 2, maxBytes: 1_000 });
  const q = new FakeQueue();
  assert.equal(buffer.hasRoomFor(1), true);
  buffer.admit(ev('a'), 1, [q]);
  assert.equal(buffer.hasRoomFor(1), true);
  buffer.admit(ev('b'), 1, [q]);
  assert.equal(buffer.hasRoomFor(1), false);
});

test('hasRoomFor is false when the bytes would exceed maxBytes, and true when they exactly fit', () => {
  const buffer = bufferOf({ capacity: 100, maxBytes: 300 });
  buffer.admit(ev('a'), 200, [new FakeQueue()]);
  assert.equal(buffer.hasRoomFor(100), true);
  assert.equal(buffer.hasRoomFor(101), false);
});

test('evictFor returns 0 when there is already room', () => {
  const buffer = bufferOf();
  buffer.setEvictionSources([new FakeQueue()]);
  assert.equal(buffer.evictFor(10).evicted, 0);
});

test('evictFor evicts the oldest pending events first, across two sources', () => {
  const buffer = bufferOf({ capacity: 100, maxBytes: 400 });
  const a = new FakeQueue();
  const b = new FakeQueue();
  buffer.setEvictionSources([a, b]);
  // Admission order e0..e3 alternates between the queues: a holds e0, e2; b holds e1, e3.
  const held = [0, 1, 2, 3].map((i) => buffer.admit(ev(`e${i}`), 100, [i % 2 === 0 ? a : b]));
  assert.equal(buffer.hasRoomFor(150), false);

  assert.equal(buffer.evictFor(150).evicted, 2, 'frees 200 bytes to fit 150');
  assert.deepEqual(
    held.map((h) => h.released),
    [true, true, false, false],
  );
  assert.equal(buffer.size, 2);
  assert.equal(buffer.bytes, 200);

  assert.equal(buffer.evictFor(300).evicted, 1);
  assert.deepEqual(
    held.map((h) => h.released),
    [true, true, true, false],
  );
});

test('evictFor skips events that are in flight (no longer pending)', () => {
  const buffer = bufferOf({ capacity: 3 });
  const a = new FakeQueue();
  const b = new FakeQueue();
  buffer.setEvictionSources([a, b]);
  const e0 = buffer.admit(ev('e0'), 1, [a]);
  a.takeAll(); // e0 is in flight
  const e1 = buffer.admit(ev('e1'), 1, [b]);
  buffer.admit(ev('e2'), 1, [a]);
  assert.equal(buffer.evictFor(1).evicted, 1);
  assert.equal(e0.released, false);
  assert.equal(e1.released, true);
});

test('evictFor reports no fit when nothing is evictable, leaving the buffer as it was', () => {
  const buffer = bufferOf({ capacity: 2 });
  const q = new FakeQueue();
  buffer.setEvictionSources([q]);
  buffer.admit(ev('a'), 1, [q]);
  buffer.admit(ev('b'), 1, [q]);
  q.takeAll(); // everything is in flight
  assert.equal(buffer.evictFor(1).fits, false);
  assert.equal(buffer.size, 2);
});

test('evictFor reports no fit when the event is bigger than the whole buffer', () => {
  const buffer = bufferOf({ maxBytes: 100 });
  const q = new FakeQueue();
  buffer.setEvictionSources([q]);
  buffer.admit(ev('a'), 10, [q]);
  assert.equal(buffer.evictFor(101).fits, false);
});

test('waitForRoom resolves at once when there is room and nobody is waiting', async () => {
  assert.equal(await bufferOf().waitForRoom(10), true);
});

test('waitForRoom waiters are served in arrival order once settling frees room', async () => {
  const buffer = bufferOf({ capacity: 10, maxBytes: 100 });
  const q = new FakeQueue();
  const [big1, big2, small] = [40, 40, 20].map((bytes, i) => buffer.admit(ev(`e${i}`), bytes, [q]));
  const order: string[] = [];
  const first = buffer.waitForRoom(40).then((room) => order.push(`first:${room}`));
  const second = buffer.waitForRoom(10).then((room) => order.push(`second:${room}`));

  buffer.settle(small!); // 80 bytes held: room for the second (10) but not the first (40)
  await flushPromises();
  assert.deepEqual(order, [], 'the second waiter does not overtake the first');

  buffer.settle(big1!); // 40 bytes held: room for both
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first:true', 'second:true']);
  assert.equal(big2!.released, false);
});

test('a new waiter queues behind earlier ones even when its own event would fit', async () => {
  const buffer = bufferOf({ capacity: 10, maxBytes: 100 });
  const held = buffer.admit(ev('e'), 90, [new FakeQueue()]);
  const order: string[] = [];
  const first = buffer.waitForRoom(50).then(() => order.push('first'));
  const second = buffer.waitForRoom(5).then(() => order.push('second'));
  await flushPromises();
  assert.deepEqual(order, []);
  buffer.settle(held);
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first', 'second']);
});

test('close resolves every pending waiter with false, and later waits too', async () => {
  const buffer = bufferOf({ capacity: 1 });
  buffer.admit(ev('e'), 1, [new FakeQueue()]);
  const waits = [buffer.waitForRoom(1), buffer.waitForRoom(1)];
  buffer.close();
  assert.deepEqual(await Promise.all(waits), [false, false]);
  assert.equal(await buffer.waitForRoom(1), false);
});
