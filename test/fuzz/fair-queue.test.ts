// FairQueue under any interleaving of pushes, takes and drop_oldest evictions, with any quanta:
// nothing is lost or taken twice, each tenant's lane keeps its order, a take returns as many as
// asked while any wait, and eviction always finds the oldest event of all lanes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { BufferedEvent } from '../../src/buffer/buffered-event.js';
import { FairQueue } from '../../src/buffer/fair-queue.js';
import type { Event } from '../../src/gen/polku/v1/event.js';
import type { TenantShare } from '../../src/tenants/tenant.js';
import { fuzzRuns } from './runs.js';

const share = (lane: number, quantum: number): TenantShare => ({
  name: `t${lane}`,
  lane,
  quantum,
  events: 0,
  bytes: 0,
  maxEvents: 1e9,
  maxBytes: 1e9,
});

type Op = { kind: 'push'; lane: number } | { kind: 'take'; n: number } | { kind: 'evict' };

test('FairQueue keeps every event exactly once and each lane in order', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('push' as const), lane: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant('take' as const), n: fc.integer({ min: 1, max: 7 }) }),
    fc.record({ kind: fc.constant('evict' as const) }),
  );
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 4, maxLength: 4 }),
      fc.array(op, { maxLength: 200 }),
      (quanta, ops: Op[]) => {
        const shares = quanta.map((q, i) => (i === 0 ? undefined : share(i, q)));
        const q = new FairQueue(4);
        let seq = 0;
        const live = new Map<number, BufferedEvent>();
        const lastTaken = new Map<number, number>();
        const out = (b: BufferedEvent): void => {
          assert.ok(live.delete(b.seq), `seq ${b.seq} was pending exactly once`);
          const lane = b.share?.lane ?? 0;
          assert.ok((lastTaken.get(lane) ?? -1) < b.seq, `lane ${lane} keeps its order`);
          lastTaken.set(lane, b.seq);
        };
        for (const o of ops) {
          if (o.kind === 'push') {
            const b: BufferedEvent = { event: {} as Event, bytes: 1, seq: seq++, refs: 1, released: false, share: shares[o.lane], atMs: 0 };
            live.set(b.seq, b);
            q.push(b);
          } else if (o.kind === 'take') {
            const batch = q.take(o.n);
            assert.equal(batch.length, Math.min(o.n, live.size));
            batch.forEach(out);
          } else {
            const oldest = q.peekOldest();
            if (live.size === 0) assert.equal(oldest, undefined);
            else {
              assert.equal(oldest!.seq, Math.min(...live.keys()), 'drop_oldest sees the oldest of all lanes');
              // Evicting is not a take: the lane's order check does not apply, only exactly-once.
              assert.ok(live.delete(q.shiftOldest()!.seq));
            }
          }
          assert.equal(q.length, live.size);
        }
        q.take(Number.MAX_SAFE_INTEGER).forEach(out);
        assert.equal(live.size, 0);
        assert.equal(q.length, 0);
      },
    ),
    { numRuns: fuzzRuns() },
  );
});
