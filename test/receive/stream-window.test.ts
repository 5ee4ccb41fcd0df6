import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { status as GrpcStatus, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Ack, IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import type { IntakeRequest, StreamWindow } from '../../src/hub/intake-request.js';
import { DEFAULT_LIMITS } from '../../src/ingest/intake-rules.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { ReceivedBatch, UnreadableMessage } from '../../src/receive/polku-gateway/message-codec.js';
import { StreamSession } from '../../src/receive/polku-gateway/stream-session.js';
import type { IntakePort } from '../../src/receive/receiver.js';
import { FakeClock } from '../../src/testing/index.js';

/** The parts of a grpc-js server stream a session uses: Acks written, pauses, the status it ended with. */
class RecordingCall extends EventEmitter {
  readonly acks: Ack[] = [];
  paused = false;
  ended = false;
  status: { code: GrpcStatus; details: string } | undefined;
  write(ack: Ack): boolean {
    this.acks.push(ack);
    return true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  end(): void {
    this.ended = true;
  }
  override emit(name: string | symbol, ...args: unknown[]): boolean {
    if (name === 'error' && this.status === undefined) this.status = args[0] as { code: GrpcStatus; details: string };
    return super.emit(name, ...args);
  }
  /** The first event id of each Ack written, in order: which batch each answers. */
  get answered(): string[] {
    return this.acks.map((a) => a.eventIds[0] ?? a.errors[0]?.eventId ?? '?');
  }
}

const ackOf = (id: string, errors: Ack['errors'] = []): Ack => ({
  eventIds: errors.length > 0 ? [] : [id],
  errors,
  bufferSize: 0n,
  bufferCapacity: 100n,
  middlewareStats: undefined,
});

/**
 * A hub whose answers the test settles, in any order: each submitted batch (named by its source)
 * waits until `settle` answers it, as durable mode's wait for a commit. Sources starting `now-`
 * are answered at once.
 */
class HeldHub implements IntakePort {
  readonly submitted: string[] = [];
  private readonly waiting = new Map<string, (ack: Ack) => void>();
  readonly limits = DEFAULT_LIMITS;
  readonly isClosing = false;
  constructor(readonly streamWindow: StreamWindow | undefined) {}
  submit(r: IntakeRequest): Ack | Promise<Ack> {
    this.submitted.push(r.source);
    if (r.source.startsWith('now-')) return ackOf(r.source);
    return new Promise((resolve) => this.waiting.set(r.source, resolve));
  }
  settle(source: string, ack: Ack = ackOf(source)): Promise<void> {
    const resolve = this.waiting.get(source);
    assert.ok(resolve, `${source} is waiting`);
    this.waiting.delete(source);
    resolve(ack);
    // The session reacts in the promise's continuation: let it run.
    return new Promise((r) => setImmediate(r));
  }
  health(): never {
    throw new Error('not used');
  }
}

/** A readable batch named `source`, arriving in `bytes` bytes. */
function batch(source: string, bytes = 100): ReceivedBatch {
  return {
    batch: { source, cluster: '', payload: { $case: 'events', value: { events: [] } } } as IngestBatch,
    wire: { bytes: new Uint8Array(bytes), starts: [], ends: [], lacks: [] },
  };
}

interface Opened {
  call: RecordingCall;
  hub: HeldHub;
  session: StreamSession;
  unanswered: number[];
  paused: number[];
}

function open(window: StreamWindow | undefined): Opened {
  const call = new RecordingCall();
  const hub = new HeldHub(window);
  const unanswered: number[] = [];
  const paused: number[] = [];
  const session = new StreamSession(
    call as unknown as ServerDuplexStream<ReceivedBatch | UnreadableMessage, Ack>,
    hub,
    new FakeClock(),
    silentLogger(),
    () => undefined,
    { paused: (d) => paused.push(d), unanswered: (n) => unanswered.push(n) },
  );
  return { call, hub, session, unanswered, paused };
}

describe('a stream with several batches waiting for their commit (durable mode)', () => {
  test('Acks are written in the order the batches came, whatever order their commits finish in', async () => {
    const { call, hub } = open({ batches: 8, bytes: 1 << 20 });
    for (const s of ['b1', 'b2', 'b3', 'b4']) call.emit('data', batch(s));
    assert.deepEqual(hub.submitted, ['b1', 'b2', 'b3', 'b4'], 'all four are in the pipeline at once');
    assert.equal(call.paused, false);
    await hub.settle('b3');
    await hub.settle('b2');
    assert.deepEqual(call.answered, [], 'b2 and b3 are ready, but b1 is not: nothing is written');
    await hub.settle('b1');
    assert.deepEqual(call.answered, ['b1', 'b2', 'b3'], 'b1, then the two held behind it');
    await hub.settle('b4');
    assert.deepEqual(call.answered, ['b1', 'b2', 'b3', 'b4']);
  });

  test('a refused batch is answered with its error in its place', async () => {
    const { call, hub } = open({ batches: 8, bytes: 1 << 20 });
    for (const s of ['b1', 'b2', 'b3']) call.emit('data', batch(s));
    await hub.settle('b3');
    await hub.settle('b2', ackOf('b2', [{ eventId: 'b2', code: 'STORAGE_ERROR', message: 'durable log write failed: EIO' }]));
    await hub.settle('b1');
    assert.deepEqual(call.answered, ['b1', 'b2', 'b3']);
    assert.equal(call.acks[1]!.errors[0]!.code, 'STORAGE_ERROR');
    assert.deepEqual(call.acks[1]!.eventIds, []);
  });

  test('an answer the hub gives at once waits behind earlier batches still waiting', async () => {
    const { call, hub } = open({ batches: 8, bytes: 1 << 20 });
    call.emit('data', batch('b1'));
    call.emit('data', batch('now-2'));
    assert.deepEqual(call.answered, []);
    await hub.settle('b1');
    assert.deepEqual(call.answered, ['b1', 'now-2']);
    call.emit('data', batch('now-3'));
    assert.deepEqual(call.answered, ['b1', 'now-2', 'now-3'], 'nothing waiting: answered at once');
  });

  test('reading stops when the window holds its batches, and resumes as soon as one is answered', async () => {
    const { call, hub, paused } = open({ batches: 3, bytes: 1 << 20 });
    call.emit('data', batch('b1'));
    call.emit('data', batch('b2'));
    assert.equal(call.paused, false);
    call.emit('data', batch('b3'));
    assert.equal(call.paused, true, 'three waiting: the stream is not read');
    // grpc-js may have decoded one more message before the pause took effect: it waits, unsubmitted.
    call.emit('data', batch('b4'));
    assert.deepEqual(hub.submitted, ['b1', 'b2', 'b3']);
    await hub.settle('b2');
    assert.equal(call.paused, true, 'b2 is ready but b1 is not: still three in the window');
    await hub.settle('b1');
    assert.deepEqual(call.answered, ['b1', 'b2']);
    assert.deepEqual(hub.submitted, ['b1', 'b2', 'b3', 'b4'], 'the held message goes in first');
    assert.equal(call.paused, false, 'two waiting: reading resumes');
    assert.deepEqual(paused, [1, -1]);
    await hub.settle('b3');
    await hub.settle('b4');
    assert.deepEqual(call.answered, ['b1', 'b2', 'b3', 'b4']);
  });

  test('the window is bounded in bytes too: large batches stop reading before the count does', async () => {
    const { call, hub } = open({ batches: 16, bytes: 1000 });
    call.emit('data', batch('b1', 400));
    call.emit('data', batch('b2', 400));
    assert.equal(call.paused, false, '800 bytes waiting');
    call.emit('data', batch('b3', 400));
    assert.equal(call.paused, true, '1200 bytes waiting: at the bound');
    await hub.settle('b1');
    assert.equal(call.paused, false, '800 bytes waiting again');
    // One batch always fits, however large.
    await hub.settle('b2');
    await hub.settle('b3');
    call.emit('data', batch('huge', 5000));
    assert.deepEqual(hub.submitted, ['b1', 'b2', 'b3', 'huge']);
    assert.equal(call.paused, true);
    await hub.settle('huge');
    assert.equal(call.paused, false);
  });

  test('a stream closed with batches waiting counts them unanswered and writes nothing after', async () => {
    const { call, hub, unanswered } = open({ batches: 8, bytes: 1 << 20 });
    for (const s of ['b1', 'b2', 'b3']) call.emit('data', batch(s));
    await hub.settle('b1');
    await hub.settle('b3');
    call.emit('cancelled');
    assert.deepEqual(unanswered, [2], 'b2 and b3 (ready, behind b2) were never answered');
    await hub.settle('b2');
    assert.deepEqual(call.answered, ['b1'], 'nothing is written to a closed call');
  });

  test('the agent ending its side: the call ends once every waiting batch is answered', async () => {
    const { call, hub } = open({ batches: 8, bytes: 1 << 20 });
    call.emit('data', batch('b1'));
    call.emit('data', batch('b2'));
    call.emit('end');
    await hub.settle('b2');
    assert.equal(call.ended, false, 'b1 still waiting');
    await hub.settle('b1');
    assert.deepEqual(call.answered, ['b1', 'b2']);
    assert.equal(call.ended, true);
  });

  test('shutdown (close) ends the call with its status once every waiting batch is answered', async () => {
    const { call, hub, session, unanswered } = open({ batches: 8, bytes: 1 << 20 });
    call.emit('data', batch('b1'));
    call.emit('data', batch('b2'));
    session.close(GrpcStatus.UNAVAILABLE, 'gateway is shutting down');
    await hub.settle('b2');
    assert.equal(call.status, undefined, 'b1 still waiting');
    await hub.settle('b1');
    assert.deepEqual(call.answered, ['b1', 'b2']);
    assert.equal((call.status as { code: GrpcStatus } | undefined)?.code, GrpcStatus.UNAVAILABLE);
    assert.deepEqual(unanswered, []);
  });
});

describe('a stream without a window (memory mode)', () => {
  test('one batch at a time: the next is not handed to the hub until the one before is answered', async () => {
    const { call, hub } = open(undefined);
    call.emit('data', batch('b1'));
    assert.equal(call.paused, true);
    call.emit('data', batch('b2'));
    assert.deepEqual(hub.submitted, ['b1']);
    await hub.settle('b1');
    assert.deepEqual(hub.submitted, ['b1', 'b2']);
    assert.deepEqual(call.answered, ['b1']);
    await hub.settle('b2');
    assert.equal(call.paused, false);
    call.emit('data', batch('now-3'));
    assert.deepEqual(call.answered, ['b1', 'b2', 'now-3']);
  });
});
