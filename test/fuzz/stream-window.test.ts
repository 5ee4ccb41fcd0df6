import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import fc from 'fast-check';
import type { Ack, IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import type { IntakeRequest } from '../../src/hub/intake-request.js';
import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { ReceivedBatch, UnreadableMessage } from '../../src/receive/polku-gateway/message-codec.js';
import { StreamSession } from '../../src/receive/polku-gateway/stream-session.js';
import type { IntakePort } from '../../src/receive/receiver.js';
import { FakeClock } from '../../src/testing/index.js';
import { fuzzRuns } from './runs.js';

/** A grpc-js server stream as far as a session uses it; pausing lets at most one more message through (grpc-js's read-ahead). */
class Call extends EventEmitter {
  readonly written: string[] = [];
  paused = false;
  sinceFull = 0;
  write(ack: Ack): boolean {
    this.written.push(ack.eventIds[0]!);
    return true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    this.sinceFull = 0;
  }
  end(): void {}
}

const ackOf = (name: string): Ack => ({ eventIds: [name], errors: [], bufferSize: 0n, bufferCapacity: 1n, middlewareStats: undefined });

type Step = { kind: 'message'; sync: boolean; bytes: number } | { kind: 'settle'; pick: number };

const steps = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('message' as const), sync: fc.boolean(), bytes: fc.integer({ min: 0, max: 300 }) }),
    fc.record({ kind: fc.constant('settle' as const), pick: fc.nat() }),
  ),
  { maxLength: 40 },
);

test('whatever order the hub answers in, Acks go out in arrival order and the window is never exceeded', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 1000 }), steps, async (batches, bytes, script: Step[]) => {
      const call = new Call();
      const submitted: string[] = [];
      const waiting: Array<{ name: string; resolve: (a: Ack) => void }> = [];
      const sizes = new Map<string, number>();
      const hub: IntakePort = {
        limits: DEFAULT_LIMITS,
        isClosing: false,
        streamWindow: { batches, bytes },
        health: () => Promise.reject(new Error('not used')),
        submit(r: IntakeRequest): Ack | Promise<Ack> {
          submitted.push(r.source);
          if (r.source.startsWith('sync')) return ackOf(r.source);
          return new Promise((resolve) => waiting.push({ name: r.source, resolve }));
        },
      };
      new StreamSession(
        call as unknown as ServerDuplexStream<ReceivedBatch | UnreadableMessage, Ack>,
        hub,
        new FakeClock(),
        silentLogger(),
        () => undefined,
      );
      const sent: string[] = [];
      const flush = () => new Promise((r) => setImmediate(r));
      /** Batches handed to the hub and not yet answered, and the bytes of those waiting on it. */
      const check = () => {
        const open = submitted.slice(call.written.length);
        const waitingBytes = open.filter((n) => n.startsWith('async')).reduce((sum, n) => sum + sizes.get(n)!, 0);
        assert.deepEqual(call.written, submitted.slice(0, call.written.length), 'answers in the order handed in');
        assert.deepEqual(submitted, sent.slice(0, submitted.length), 'handed in the order received');
        assert.ok(open.length <= batches, `${open.length} waiting, window ${batches}`);
        const last = open.length > 0 ? sizes.get(open[open.length - 1]!)! : 0;
        assert.ok(waitingBytes - last < bytes, `${waitingBytes} bytes waiting, window ${bytes} (the last may cross it)`);
      };
      for (const step of script) {
        if (step.kind === 'message') {
          // A paused call delivers at most the one message grpc-js decoded ahead.
          if (call.paused && call.sinceFull >= 1) continue;
          if (call.paused) call.sinceFull++;
          const name = `${step.sync ? 'sync' : 'async'}-${sent.length}`;
          sizes.set(name, step.bytes);
          sent.push(name);
          const batch: ReceivedBatch = {
            batch: { source: name, cluster: '', payload: { $case: 'events', value: { events: [] } } } as IngestBatch,
            wire: { bytes: new Uint8Array(step.bytes), starts: [], ends: [], lacks: [] },
          };
          call.emit('data', batch);
        } else if (waiting.length > 0) {
          const [w] = waiting.splice(step.pick % waiting.length, 1);
          w!.resolve(ackOf(w!.name));
          await flush();
        }
        check();
      }
      // Answer everything still waiting, oldest last: every message is handed in and answered, in order.
      while (waiting.length > 0) {
        const w = waiting.pop()!;
        w.resolve(ackOf(w.name));
        await flush();
        check();
      }
      assert.deepEqual(submitted, sent, 'every message received was handed in');
      assert.deepEqual(call.written, sent, 'and answered, in order');
      assert.equal(call.paused, false, 'reading resumed');
    }),
    { numRuns: fuzzRuns(300) },
  );
});
