/**
 * How long one hostile (or one maximal legitimate) gRPC message holds the event loop: decode plus
 * the hub's intake, in-process, the worst of `REPS` runs after a warm-up. Figures go to
 * docs/security.md, "Decoding limits".
 *
 *   node --import tsx bench/decoding-limits.ts [--max-old-space-size=160 via NODE_OPTIONS]
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { EmitResults } from '../src/emit/emitter.js';
import { Event } from '../src/gen/polku/v1/event.js';
import { IngestBatch } from '../src/gen/polku/v1/gateway.js';
import { hub } from '../src/hub/builder.js';
import { intakeOfBatch, intakeOfUnreadable } from '../src/hub/polku-messages.js';
import { PassthroughIngestor } from '../src/ingest/passthrough.js';
import { DEFAULT_LIMITS } from '../src/ingest/intake-rules.js';
import { silentLogger } from '../src/observability/logger.js';
import { createRegistry } from '../src/observability/metrics.js';
import { readIngestBatch, UnreadableMessage } from '../src/receive/polku-gateway/message-codec.js';

const MAX = DEFAULT_LIMITS.maxMessageBytes;
const REPS = Number(process.env['REPS'] ?? 10);

function batchOfEvents(eventBytes: (i: number) => Uint8Array, n: number): Uint8Array {
  const w = new BinaryWriter().uint32(10).string('agent').uint32(34).fork();
  for (let i = 0; i < n; i++) w.uint32(10).bytes(eventBytes(i));
  return w.join().finish();
}

function rawBatch(data: Uint8Array, format: string): Uint8Array {
  return IngestBatch.encode({ source: 'agent', cluster: '', payload: { $case: 'raw', value: { data, format } } }).finish();
}

/** `0x0a 0x00` repeated: an IngestBatch of ~2M empty events in 4 MiB. */
function emptyEvents(): Uint8Array {
  const head = Buffer.from(new BinaryWriter().uint32(10).string('agent').finish());
  const body = Buffer.alloc(MAX - head.length - 8, 0);
  for (let i = 0; i + 1 < body.length; i += 2) body[i] = 0x0a;
  const len = new BinaryWriter().uint32(34).uint32(body.length).finish();
  return Buffer.concat([head, len, body]);
}

/** A protobuf-delimited raw payload of 3-byte records (`02 10 01`, an event with timestamp 1). */
function delimitedTiny(): Uint8Array {
  const data = Buffer.alloc(MAX - 64);
  for (let i = 0; i + 2 < data.length; i += 3) data.set([0x02, 0x10, 0x01], i);
  return rawBatch(data.subarray(0, data.length - (data.length % 3)), 'protobuf-delimited');
}

const legitEvent = (i: number) =>
  Event.encode({
    id: `evt-${i}-0123456789`,
    timestampUnixNs: 1_764_560_000_123_456_789n,
    source: 'kubelet',
    eventType: 'pod.started',
    metadata: { namespace: 'default', pod: `web-${i}`, node: 'node-1' },
    payload: new Uint8Array(300).fill(i & 0xff),
    routeTo: [],
    severity: 2,
    outcome: 1,
  }).finish();

/** The most a legitimate batch holds: maxBatchEvents events filling the message. */
function maxLegit(): Uint8Array {
  return batchOfEvents(legitEvent, DEFAULT_LIMITS.maxBatchEvents);
}

function maxLegitDelimited(): Uint8Array {
  const w = new BinaryWriter();
  for (let i = 0; i < DEFAULT_LIMITS.maxBatchEvents; i++) w.bytes(legitEvent(i));
  return rawBatch(w.finish(), 'protobuf-delimited');
}

/** Four events of ~1 MiB (just under maxEventBytes), each all `route_to` entries or all metadata entries. */
function bigEvents(kind: 'route_to' | 'metadata'): Uint8Array {
  const target = DEFAULT_LIMITS.maxEventBytes - 64;
  const one = (): Uint8Array => {
    const w = new BinaryWriter().uint32(10).string('big');
    let n = 0;
    while (w.finish.length >= 0 && n * (kind === 'route_to' ? 2 : 10) < target) {
      if (kind === 'route_to') w.uint32(58).string('');
      else
        w.uint32(42)
          .fork()
          .uint32(10)
          .string(`k${n.toString(36).padStart(4, '0')}`)
          .join();
      n++;
    }
    return w.finish();
  };
  const e = one();
  return batchOfEvents(() => e, Math.floor((MAX - 64) / (e.length + 8)));
}

/** Events of ~1 MiB, each one field sent over and over: `0a 00` (id), `32 00` (payload), `f8 06 01` (unknown). */
function repeatedFields(): Uint8Array {
  const target = DEFAULT_LIMITS.maxEventBytes - 64;
  const unit = [Buffer.from([0x0a, 0x00]), Buffer.from([0x32, 0x00]), Buffer.from([0xf8, 0x06, 0x01])];
  const events = unit.map((u) => Buffer.concat(Array.from({ length: Math.floor(target / u.length) }, () => u)));
  return batchOfEvents((i) => events[i % 3]!, 3);
}

/** 4 MiB of one top-level IngestBatch field repeated: `0a 00` (source) or `22 00` (an empty events payload). */
function repeatedTopLevel(tag: number): Uint8Array {
  const body = Buffer.alloc(MAX - 64);
  for (let i = 0; i + 1 < body.length; i += 2) body[i] = tag;
  return body;
}

const cases: Array<[string, Uint8Array]> = [
  ['4 MiB of empty events (0x0a 0x00 ×2M)', emptyEvents()],
  ['4 MiB protobuf-delimited of 3-byte records', delimitedTiny()],
  ['4 MiB of the batch source repeated (0x0a 0x00 ×2M at top level)', repeatedTopLevel(0x0a)],
  ['4 MiB of empty events payloads (0x22 0x00 ×2M)', repeatedTopLevel(0x22)],
  ['largest legitimate batch (10,000 events of ~400 B)', maxLegit()],
  ['largest legitimate protobuf-delimited (10,000 records)', maxLegitDelimited()],
  ['events of ~1 MiB of empty route_to entries', bigEvents('route_to')],
  ['events of ~1 MiB of distinct metadata keys', bigEvents('metadata')],
  ['events of ~1 MiB of one field repeated (id, payload, unknown)', repeatedFields()],
];

/** Median and worst of the runs, ms. */
function spread(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `median ${sorted[sorted.length >> 1]!.toFixed(1)} ms, worst ${sorted[sorted.length - 1]!.toFixed(1)} ms`;
}

const h = hub()
  .ingestor(new PassthroughIngestor())
  .emitter({ name: 'sink', emit: () => Promise.resolve(EmitResults.success()) })
  .buffer({ capacity: 1_000_000, overflow: 'drop_oldest' })
  .build({ registry: createRegistry(), logger: silentLogger() });
await h.start();

for (const [name, bytes] of cases) {
  const decodes: number[] = [];
  const totals: number[] = [];
  let summary = '';
  for (let rep = 0; rep < REPS + 2; rep++) {
    const t0 = performance.now();
    const r = readIngestBatch(bytes, DEFAULT_LIMITS);
    const t1 = performance.now();
    const ack = await h.submit(
      r instanceof UnreadableMessage ? intakeOfUnreadable(r, { unary: false }) : intakeOfBatch(r.batch, undefined, r.wire),
    );
    const t2 = performance.now();
    if (rep >= 2) {
      decodes.push(t1 - t0);
      totals.push(t2 - t0);
    }
    const codes = [...new Set(ack.errors.map((e) => e.code))].join(',');
    summary = `accepted ${ack.eventIds.length}, refused ${ack.errors.length}${codes ? ` (${codes})` : ''}`;
    await new Promise((r) => setTimeout(r, 20));
  }
  const mib = (bytes.length / 1024 / 1024).toFixed(2);
  console.log(`${name}: ${mib} MiB; decode ${spread(decodes)}; decode+intake ${spread(totals)}; ${summary}`);
}
// Baseline in the same run: the generated (lenient, unbounded) decoder on the largest legitimate batch.
const legit = maxLegit();
const generated: number[] = [];
for (let rep = 0; rep < REPS + 2; rep++) {
  const t0 = performance.now();
  IngestBatch.decode(legit);
  if (rep >= 2) generated.push(performance.now() - t0);
}
console.log(`baseline, IngestBatch.decode of the largest legitimate batch: ${spread(generated)}`);
console.log(`rss ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB`);
process.exit(0);
