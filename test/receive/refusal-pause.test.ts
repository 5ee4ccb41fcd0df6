import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { Ack, IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import type { IntakeRequest } from '../../src/hub/intake-request.js';
import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { silentLogger } from '../../src/observability/logger.js';
import { UnreadableMessage, type ReceivedBatch } from '../../src/receive/polku-gateway/message-codec.js';
import { REFUSAL_PAUSE_MAX_MS, StreamSession } from '../../src/receive/polku-gateway/stream-session.js';
import type { IntakePort } from '../../src/receive/receiver.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';

/** The parts of a grpc-js server stream a session uses, recording pauses and Acks. */
class RecordingCall extends EventEmitter {
  readonly acks: Ack[] = [];
  paused = false;
  pauses = 0;
  write(ack: Ack): boolean {
    this.acks.push(ack);
    return true;
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  end(): void {}
}

const ack = (ids: string[], errors: Ack['errors'] = []): Ack => ({
  eventIds: ids,
  errors,
  bufferSize: 0n,
  bufferCapacity: 100n,
  middlewareStats: undefined,
});

/** A hub that accepts readable batches and refuses unreadable messages whole, as the real one does. */
const hub: IntakePort = {
  submit: (r: IntakeRequest) =>
    r.payload.kind === 'unreadable' ? ack([], [{ eventId: '', code: r.payload.code, message: r.payload.message }]) : ack(['a']),
  limits: DEFAULT_LIMITS,
  isClosing: false,
  health: () => Promise.reject(new Error('not used')),
};

const tooLarge = new UnreadableMessage('BATCH_TOO_LARGE', 'batch has more than 10000 events');
const good: ReceivedBatch = {
  batch: { source: 'agent', cluster: '', payload: { $case: 'events', value: { events: [] } } } as IngestBatch,
  wire: undefined,
};

function session(): { call: RecordingCall; timers: FakeTimers } {
  const call = new RecordingCall();
  const timers = new FakeTimers(new FakeClock());
  new StreamSession(
    call as unknown as ServerDuplexStream<ReceivedBatch | UnreadableMessage, Ack>,
    hub,
    new FakeClock(),
    silentLogger(),
    () => undefined,
    undefined,
    timers,
  );
  return { call, timers };
}

describe('a stream whose whole messages are refused stops being read for a while', () => {
  test('10 ms after the first refusal, doubling with each in a row, up to 1 s; every message still answered', () => {
    const { call, timers } = session();
    const expected = [10, 20, 40, 80, 160, 320, 640, 1000, 1000];
    for (const ms of expected) {
      call.emit('data', tooLarge);
      assert.equal(call.paused, true, 'reading stops after a whole refusal');
      timers.advance(ms - 1);
      assert.equal(call.paused, true, `still paused at ${ms - 1} ms`);
      timers.advance(1);
      assert.equal(call.paused, false, `reading resumes at ${ms} ms`);
    }
    assert.equal(expected.at(-1), REFUSAL_PAUSE_MAX_MS);
    assert.equal(call.acks.length, expected.length);
    assert.ok(call.acks.every((a) => a.errors[0]?.code === 'BATCH_TOO_LARGE'));
  });

  test('a batch that is read resets the pause, and never pauses by itself', () => {
    const { call, timers } = session();
    call.emit('data', tooLarge);
    timers.advance(10);
    call.emit('data', tooLarge);
    timers.advance(20);
    call.emit('data', good);
    assert.equal(call.paused, false);
    assert.equal(timers.pending, 0);
    call.emit('data', tooLarge);
    timers.advance(9);
    assert.equal(call.paused, true);
    timers.advance(1);
    assert.equal(call.paused, false, 'back to 10 ms after a good batch');
    assert.deepEqual(
      call.acks.map((a) => a.eventIds.length),
      [0, 0, 1, 0],
    );
  });

  test('a stream that ends while paused leaves no timer behind', () => {
    const { call, timers } = session();
    call.emit('data', tooLarge);
    assert.equal(timers.pending, 1);
    call.emit('close');
    assert.equal(timers.pending, 0);
  });
});
