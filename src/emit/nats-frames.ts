import type { NatsConnection } from '@nats-io/transport-node';

/**
 * What {@link HpubWriter} uses of the connection's protocol handler (`ProtocolHandler` in
 * @nats-io/nats-core 3.x lib/protocol.js, the object `nc.publish` hands each message to). Not part
 * of the client's typed API: {@link HpubWriter.of} checks every member and answers null when one is
 * missing, and the emitter then publishes through `nc.publish` instead.
 */
interface Protocol {
  /** Appends bytes to the outbound buffer, in order with everything else the client sends. */
  sendCommand(cmd: Uint8Array): void;
  /** Writes the outbound buffer to the socket now (a no-op while not connected: it stays queued). */
  flushPending(): void;
  /** The server's INFO: `headers` (HPUB allowed) and `max_payload`; undefined before the first one. */
  info?: { headers?: boolean; max_payload?: number } | undefined;
  /** Set by drain() and close(): nothing more may be published. */
  noMorePublishing: boolean;
  /** The client's statistics (`nc.stats()`), kept as `publish` keeps them. */
  outBytes: number;
  outMsgs: number;
}

/** `NATS/1.0\r\nNats-Msg-Id: ` and `\r\n\r\n` around the id: the header block of every message. */
const HEADER_HEAD = 'NATS/1.0\r\nNats-Msg-Id: ';
const HEADER_BYTES = HEADER_HEAD.length + 4;
/** A chunk handed to the socket at once: big enough that a 1,000-event batch is ~12 writes. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Writes JetStream publishes (HPUB frames with `Nats-Msg-Id` and a reply subject) straight into
 * 64 KiB chunks and hands each chunk to the client's outbound buffer: the same bytes `nc.publish`
 * puts on the wire, without its per-message header object, header encoding, TextEncoder call and
 * buffer concatenation (about half of the emitter's CPU per event, measured with
 * bench/sinks/emitter-cpu.ts). Connection handling (reconnects, PING, auth) stays the client's.
 *
 * Use: `publish()` per message, then `flush()` once per batch.
 */
export class HpubWriter {
  private chunk: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;

  private constructor(private readonly p: Protocol) {}

  /** A writer on `nc`'s protocol handler, or null when this client version does not have one. */
  static of(nc: NatsConnection): HpubWriter | null {
    const p = (nc as unknown as { protocol?: Partial<Protocol> }).protocol;
    if (
      p === undefined ||
      typeof p.sendCommand !== 'function' ||
      typeof p.flushPending !== 'function' ||
      typeof p.noMorePublishing !== 'boolean' ||
      typeof p.outBytes !== 'number' ||
      typeof p.outMsgs !== 'number'
    ) {
      return null;
    }
    return new HpubWriter(p as Protocol);
  }

  /**
   * Why nothing can be published now (the connection is draining or closing, or the server takes
   * no headers), or null. Checked once per batch, as `nc.publish` checks it per message.
   */
  refusal(): { error: string; retryable: boolean } | null {
    if (this.p.noMorePublishing) return { error: 'the connection is draining or closed', retryable: true };
    if (this.p.info !== undefined && this.p.info.headers === false) {
      return { error: 'the server does not accept headers (Nats-Msg-Id needs them)', retryable: false };
    }
    return null;
  }

  /**
   * Appends one message to `subject` with `msgId` as its `Nats-Msg-Id` and acks to `reply`; null,
   * or why this message can never be published (over the server's `max_payload`, an id with CR or
   * LF). `subject` and `reply` must be valid subjects (the emitter's templates make them so).
   */
  publish(subject: string, reply: string, msgId: string, body: string): string | null {
    if (msgId.includes('\r') || msgId.includes('\n')) return 'the event id holds CR or LF, which a Nats-Msg-Id header cannot';
    // The client trims header values; so does this, so a resend carries the same id either way.
    const id = msgId.trim();
    const hlen = HEADER_BYTES + Buffer.byteLength(id);
    const total = hlen + Buffer.byteLength(body);
    const max = this.p.info?.max_payload;
    if (max !== undefined && total > max) return `message of ${total} bytes is over the server's max_payload of ${max}`;
    const head = `HPUB ${subject} ${reply} ${hlen} ${total}\r\n${HEADER_HEAD}${id}\r\n\r\n`;
    const frameBytes = Buffer.byteLength(head) + (total - hlen) + 2;
    if (this.used + frameBytes > this.chunk.length) {
      this.flush();
      if (frameBytes > this.chunk.length) this.chunk = Buffer.allocUnsafe(frameBytes);
    }
    const c = this.chunk;
    let at = this.used;
    at += c.write(head, at, 'utf8');
    at += c.write(body, at, 'utf8');
    c[at++] = 13;
    c[at++] = 10;
    this.used = at;
    this.p.outBytes += total;
    this.p.outMsgs++;
    return null;
  }

  /** Hands what was appended to the client and writes it to the socket. */
  flush(): void {
    if (this.used === 0) return;
    const full = this.chunk.subarray(0, this.used);
    // The client keeps a reference until the socket has taken it: the next chunk is a new buffer.
    this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    this.used = 0;
    this.p.sendCommand(full);
    this.p.flushPending();
  }
}
