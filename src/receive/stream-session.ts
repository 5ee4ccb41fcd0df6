import { status as GrpcStatus, type ServerDuplexStream } from '@grpc/grpc-js';
import { systemTimers, type Clock, type TimerHandle, type Timers } from '../clock.js';
import type { Ack } from '../gen/polku/v1/gateway.js';
import type { IntakeRequest } from '../hub/intake-request.js';
import type { Logger } from '../observability/logger.js';
import { apiKeyOfMetadata, withApiKey } from './api-key.js';
import type { IntakePort, StreamWindow } from './receiver.js';

/**
 * Decoded messages the call may hold beyond the one in hand. grpc-js's call is an object-mode
 * stream whose default high-water mark (16) lets it decode sixteen messages ahead of a session that
 * has stopped reading: 16 × a 16 MiB transport ceiling per stream. With one, a paused stream holds
 * at most this message, the one grpc-js has decoded for the next read and the decoder's partial
 * frame; HTTP/2 flow control holds the rest on the agent's side.
 */
export const STREAM_READ_AHEAD_MESSAGES = 1;

/**
 * A stream whose whole message was refused (too large, unreadable) stops being read for a while,
 * doubling with each such message in a row: 10 ms, 20 ms, … up to 1 s. Answering costs little,
 * but receiving a few MiB that will be refused whole does not, and a stream sending nothing else
 * would otherwise take a core from the agents beside it. One message that is read resets it.
 */
export const REFUSAL_PAUSE_FIRST_MS = 10;
export const REFUSAL_PAUSE_MAX_MS = 1_000;

/** A status the call ends with instead of an answer (see {@link StreamProtocol.answer}). */
export class StreamEnd {
  constructor(
    readonly code: GrpcStatus,
    readonly details: string,
  ) {}
}

/**
 * What makes a session one protocol's: how a received message becomes an intake request, and how
 * the hub's Ack becomes the message written back (or the status that ends the call, for protocols
 * whose answer cannot carry a refusal).
 */
export interface StreamProtocol<In, Out> {
  /** The request for one message, as the deserializer returned it (decoded, or unreadable). */
  intake(message: In, receivedAtNs: bigint): IntakeRequest;
  /** The answer to `ack`, written in order; a {@link StreamEnd} ends the call with its status instead. */
  answer(ack: Ack): Out | StreamEnd;
  /**
   * The bytes a message holds while it waits for its answer (its encoded size, about), counted
   * against the window's `bytes`. Left out: messages count as none and only `batches` bounds it.
   */
  sizeOf?(message: In): number;
}

/** What a session reports about itself (a gauge of the paused ones). */
export interface StreamSessionMetrics {
  /** Moves by one when a session stops reading for backpressure, and back when it resumes. */
  paused(delta: 1 | -1): void;
  /**
   * Batches handed to the hub whose answer could not be written: the stream ended (cancelled, reset,
   * failed) while they waited in its window. Their events may be stored; none of them was acknowledged.
   */
  unanswered?(batches: number): void;
}

/** One message handed to the hub, waiting for its answer to be written in its turn. */
interface InFlight {
  /** Set once the hub answered; written when every earlier one was. */
  ack: Ack | null;
  readonly bytes: number;
}

/** One batch at a time: the window of a hub that does not say otherwise (memory mode). */
const ONE_AT_A_TIME: StreamWindow = { batches: 1, bytes: Number.POSITIVE_INFINITY };

/**
 * One agent's streaming call (StreamEvents, StreamK8sEvents): one answer per message, in order.
 *
 * A batch the hub answers at once is answered at once. One the hub answers later (an async
 * ingestor or middleware, `block` waiting for room, durable mode's commit) occupies the stream's
 * window ({@link IntakePort.streamWindow}): one batch in memory mode, so the session stops reading
 * until it is answered; several in durable mode, so a stream's next batches go into the log's next
 * group commit while earlier ones wait for theirs, instead of the stream idling for every disk
 * write. Answers are written in the order the messages came, whatever order the hub settles them
 * in: an answer that is ready waits behind earlier ones still waiting.
 *
 * When the window is full (in batches or bytes) or the agent stops reading its Acks, the session
 * stops reading the stream; grpc-js then stops reading the socket and HTTP/2 flow control pushes
 * back on the agent. Nothing is dropped to keep up.
 */
export class StreamSession<In, Out> {
  private readonly backlog: In[] = [];
  /** Messages handed to the hub and not yet answered, oldest first. */
  private readonly inFlight: InFlight[] = [];
  private inFlightBytes = 0;
  /** The session holds (has paused the call) because its window is full. */
  private windowHeld = false;
  private readonly window: StreamWindow;
  private holds = 0;
  private inputEnded = false;
  private closed = false;
  private closeStatus: { code: GrpcStatus; details: string } | null = null;
  /** Whole messages refused in a row, and the pause they earned. */
  private refusedInARow = 0;
  private refusalPause: TimerHandle | null = null;
  /** The caller's API key (metadata `x-api-key`), read once: it is the call's, not each message's. */
  private readonly apiKey: string | undefined;

  constructor(
    private readonly call: ServerDuplexStream<In, Out>,
    private readonly hub: IntakePort,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onDone: (session: StreamSession<In, Out>) => void,
    private readonly protocol: StreamProtocol<In, Out>,
    private readonly metrics?: StreamSessionMetrics,
    private readonly timers: Timers = systemTimers,
  ) {
    limitReadAhead(call as unknown as ServerDuplexStream<unknown, unknown>);
    this.window = hub.streamWindow ?? ONE_AT_A_TIME;
    this.apiKey = apiKeyOfMetadata(call.metadata);
    call.on('data', (message: In) => this.onMessage(message));
    call.on('end', () => {
      this.inputEnded = true;
      this.maybeFinish();
    });
    call.on('cancelled', () => this.finish());
    call.on('error', (err: Error) => {
      this.log.debug({ err }, 'stream error');
      this.finish();
    });
    call.on('close', () => this.finish());
  }

  /**
   * Ends the call with `code` once the batches in hand are answered (shutdown). Batches that arrive
   * meanwhile are still answered (the hub refuses them with SHUTTING_DOWN).
   */
  close(code: GrpcStatus, details: string): void {
    if (this.closed) return;
    this.closeStatus = { code, details };
    this.inputEnded = true;
    this.maybeFinish();
  }

  private onMessage(message: In): void {
    // A call ended by an answer's status takes nothing more: nothing could answer it.
    if (this.closed) return;
    if (this.windowFull() || this.backlog.length > 0) {
      this.backlog.push(message);
      return;
    }
    this.handle(message);
  }

  /** No room for another message in the window: it waits in the backlog (reading has stopped). */
  private windowFull(): boolean {
    const n = this.inFlight.length;
    return n > 0 && (n >= this.window.batches || this.inFlightBytes >= this.window.bytes);
  }

  private handle(message: In): void {
    const receivedAtNs = this.clock.nowNs();
    let ack: Ack | Promise<Ack>;
    try {
      ack = this.hub.submit(withApiKey(this.protocol.intake(message, receivedAtNs), this.apiKey));
    } catch (err) {
      // A bug, not bad input: end this call with INTERNAL rather than answer wrongly.
      this.log.error({ err }, 'batch processing threw');
      this.fail(GrpcStatus.INTERNAL, 'internal error while processing a batch');
      return;
    }
    if (!(ack instanceof Promise)) {
      // Answered at once, the common case in memory mode: no bookkeeping unless earlier answers
      // are still awaited, which it must then wait behind.
      if (this.inFlight.length === 0) this.reply(ack);
      else {
        this.inFlight.push({ ack, bytes: 0 });
        this.holdIfFull();
      }
      return;
    }
    const slot: InFlight = { ack: null, bytes: this.protocol.sizeOf?.(message) ?? 0 };
    this.inFlight.push(slot);
    this.inFlightBytes += slot.bytes;
    this.holdIfFull();
    ack.then(
      (a) => {
        slot.ack = a;
        this.answerReady();
      },
      (err: unknown) => {
        this.log.error({ err }, 'batch processing failed');
        this.fail(GrpcStatus.INTERNAL, 'internal error while processing a batch');
      },
    );
  }

  /** Writes the answers that are ready and have no earlier one still awaited, then reads on. */
  private answerReady(): void {
    const inFlight = this.inFlight;
    while (inFlight.length > 0 && inFlight[0]!.ack !== null) {
      const slot = inFlight.shift()!;
      this.inFlightBytes -= slot.bytes;
      this.reply(slot.ack!);
    }
    if (this.windowHeld && !this.windowFull()) {
      this.windowHeld = false;
      this.release();
    }
    this.drainBacklog();
  }

  private holdIfFull(): void {
    if (!this.windowHeld && this.windowFull()) {
      this.windowHeld = true;
      this.hold();
    }
  }

  private drainBacklog(): void {
    while (!this.windowFull() && this.backlog.length > 0 && !this.closed) this.handle(this.backlog.shift()!);
    this.maybeFinish();
  }

  private reply(ack: Ack): void {
    if (this.closed) return;
    const answer = this.protocol.answer(ack);
    if (answer instanceof StreamEnd) {
      this.fail(answer.code, answer.details);
      return;
    }
    const refusedWhole = isWholeRefusal(ack);
    this.refusedInARow = refusedWhole ? this.refusedInARow + 1 : 0;
    if (!this.call.write(answer)) {
      // The agent is not reading its Acks: stop reading its batches until it does.
      this.hold();
      this.call.once('drain', () => this.release());
    }
    if (refusedWhole && this.refusalPause === null) this.pauseAfterRefusal();
  }

  private pauseAfterRefusal(): void {
    const ms = Math.min(REFUSAL_PAUSE_MAX_MS, REFUSAL_PAUSE_FIRST_MS * 2 ** Math.min(this.refusedInARow - 1, 16));
    this.hold();
    this.refusalPause = this.timers.setTimeout(() => {
      this.refusalPause = null;
      this.release();
    }, ms);
  }

  private hold(): void {
    if (this.holds++ === 0) {
      this.call.pause();
      this.metrics?.paused(1);
    }
  }

  private release(): void {
    if (--this.holds !== 0) return;
    this.metrics?.paused(-1);
    if (!this.closed) this.call.resume();
  }

  private maybeFinish(): void {
    if (this.closed || this.inFlight.length > 0 || this.backlog.length > 0 || !this.inputEnded) return;
    if (this.closeStatus) this.fail(this.closeStatus.code, this.closeStatus.details);
    else {
      this.call.end();
      this.finish();
    }
  }

  private fail(code: GrpcStatus, details: string): void {
    if (this.closed) return;
    this.call.emit('error', { code, details }); // grpc-js sends this status and ends the call
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.refusalPause !== null) {
      this.timers.clearTimeout(this.refusalPause);
      this.refusalPause = null;
    }
    if (this.holds > 0) {
      this.holds = 0;
      this.metrics?.paused(-1);
    }
    this.windowHeld = false;
    // Answers the stream can no longer take: the agent resends those batches (at least once).
    if (this.inFlight.length > 0) this.metrics?.unanswered?.(this.inFlight.length);
    this.onDone(this);
  }
}

/** An Ack that accepted nothing because the message as a whole was refused: too large or unreadable. */
function isWholeRefusal(ack: Ack): boolean {
  if (ack.eventIds.length > 0 || ack.errors.length !== 1) return false;
  const e = ack.errors[0]!;
  return e.eventId === '' && (e.code === 'BATCH_TOO_LARGE' || e.code === 'INVALID_BATCH');
}

/**
 * Lowers the call's readable high-water mark. grpc-js builds the call with Node's default for
 * object streams and offers no option; the field is Node's own (stable since Node 10) and the
 * readable side asks grpc-js for the next message (`startRead`) only below it.
 */
function limitReadAhead(call: ServerDuplexStream<unknown, unknown>): void {
  const state = (call as unknown as { _readableState?: { highWaterMark: number } })._readableState;
  if (state && typeof state.highWaterMark === 'number') state.highWaterMark = STREAM_READ_AHEAD_MESSAGES;
}
