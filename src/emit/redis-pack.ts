import { Outcome, Severity, type Event } from '../gen/polku/v1/event.js';

/**
 * The `script` batch command's Lua: one EVALSHA per command of up to `eventsPerCommand` events.
 * KEYS are the distinct streams of the command; ARGV[1] the MAXLEN ('' for none), ARGV[2] the
 * number of events, ARGV[3] the events packed by {@link packXadd}: per event a 4-byte key index
 * (into KEYS, from 1), then its 8 field values (id, time, source, event_type, severity, outcome,
 * metadata, payload), each a 4-byte big-endian length and that many bytes, unpacked with Redis's
 * built-in `struct` library (`c0`: a string whose length is the number before it). Each XADD runs
 * under `redis.pcall`, so one refused entry does not stop the others; the reply has one element
 * per event: 0, or that XADD's error.
 *
 * One packed argument instead of 8 per event: ioredis turns every argument into RESP text, and
 * at 2,000+ arguments a command that was most of the emitter's CPU per event.
 */
export const XADD_SCRIPT = `local maxlen = ARGV[1]
local count = tonumber(ARGV[2])
local data = ARGV[3]
local unpack = struct.unpack
local fmt = '>I4I4c0I4c0I4c0I4c0I4c0I4c0I4c0I4c0'
local pos = 1
local out = {}
for i = 1, count do
  local k, id, time, source, et, sev, oc, md, pl
  k, id, time, source, et, sev, oc, md, pl, pos = unpack(fmt, data, pos)
  local r
  if maxlen == '' then
    r = redis.pcall('XADD', KEYS[k], '*', 'id', id, 'time', time, 'source', source, 'event_type', et, 'severity', sev, 'outcome', oc, 'metadata', md, 'payload', pl)
  else
    r = redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', maxlen, '*', 'id', id, 'time', time, 'source', source, 'event_type', et, 'severity', sev, 'outcome', oc, 'metadata', md, 'payload', pl)
  end
  if type(r) == 'table' and r.err then out[i] = r.err else out[i] = 0 end
end
return out`;

/** What one script command carries: its KEYS (distinct streams, first seen first) and ARGV[3]. */
export interface PackedXadd {
  readonly keys: string[];
  readonly data: Buffer;
}

/** Bytes a packed command starts with room for; it grows by doubling past that. */
const INITIAL_BYTES = 64 * 1024;

/**
 * Packs events [lo, hi) for {@link XADD_SCRIPT}, each to the stream `streamOf` names. The entry
 * fields are the emitter's documented ones: the time in Unix nanoseconds as decimal text, the
 * enum names, the metadata as one JSON object, the payload's bytes as they are.
 */
export function packXadd(events: readonly Event[], lo: number, hi: number, streamOf: (e: Event) => string): PackedXadd {
  const keys: string[] = [];
  const keyIndex = new Map<string, number>();
  const w = new Packer(INITIAL_BYTES);
  for (let i = lo; i < hi; i++) {
    const e = events[i]!;
    const stream = streamOf(e);
    let k = keyIndex.get(stream);
    if (k === undefined) {
      k = keys.push(stream);
      keyIndex.set(stream, k);
    }
    w.u32(k);
    w.str(e.id);
    w.str(e.timestampUnixNs.toString());
    w.str(e.source);
    w.str(e.eventType);
    w.str(Severity[e.severity] ?? String(e.severity));
    w.str(Outcome[e.outcome] ?? String(e.outcome));
    w.str(JSON.stringify(e.metadata));
    w.bytes(e.payload);
  }
  return { keys, data: w.done() };
}

/** Appends big-endian lengths and UTF-8 text to one buffer, growing it as needed. */
class Packer {
  private buf: Buffer;
  private at = 0;

  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(bytes);
  }

  u32(v: number): void {
    this.room(4);
    this.len(v);
  }

  /** A length-prefixed string; room for 3 bytes per UTF-16 unit, the most UTF-8 can need. */
  str(s: string): void {
    this.room(4 + 3 * s.length);
    const n = this.buf.write(s, this.at + 4, 'utf8');
    this.len(n);
    this.at += n;
  }

  bytes(b: Uint8Array): void {
    this.room(4 + b.length);
    this.len(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  done(): Buffer {
    return this.buf.subarray(0, this.at);
  }

  /** Writes `n` as 4 bytes, big-endian, and moves past them. */
  private len(n: number): void {
    const b = this.buf;
    b[this.at] = n >>> 24;
    b[this.at + 1] = (n >>> 16) & 0xff;
    b[this.at + 2] = (n >>> 8) & 0xff;
    b[this.at + 3] = n & 0xff;
    this.at += 4;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
}
