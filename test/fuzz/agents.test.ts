import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { RawCloudEvent } from '../../src/gen/elava/v1/raw.js';
import { RawK8sEvent } from '../../src/gen/portti/v1/raw.js';
import { EventBatch, RawEbpfEvent } from '../../src/gen/tapio/v1/raw.js';
import { ElavaIngestor } from '../../src/ingest/agents/elava.js';
import { PorttiIngestor } from '../../src/ingest/agents/portti.js';
import { TapioIngestor } from '../../src/ingest/agents/tapio.js';
import { decodeRefusalOf, strictReader } from '../../src/ingest/event-decoder.js';
import type { IngestResult, Ingestor } from '../../src/ingest/ingestor.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../src/ingest/intake-rules.js';
import * as keys from '../../src/metadata-keys.js';
import { ELAVA_CASES, TAPIO_CASES, elavaBatch, tapioBatch } from '../ingest/agents-cases.js';
import { fuzzRuns } from './runs.js';

const ingest = (ingestor: Ingestor, data: Uint8Array, limits: IntakeLimits = DEFAULT_LIMITS): IngestResult =>
  ingestor.ingest({ source: ingestor.sources![0]!, cluster: '', format: 'protobuf', limits }, data) as IngestResult;

const text = fc.string({ unit: 'grapheme', maxLength: 8 });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

const network = fc.record({
  protocol: text,
  srcIp: text,
  srcPort: fc.nat({ max: 65535 }),
  dstIp: text,
  dstPort: fc.nat({ max: 65535 }),
  bytesSent: u64,
  rttUs: u64,
  dnsAnswers: fc.array(text, { maxLength: 3 }),
  errorCode: text,
});
const container = fc.record({ containerId: text, exitCode: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), oomScore: u64 });

const tapioEvent: fc.Arbitrary<RawEbpfEvent> = fc
  .record({
    id: text,
    timestamp: fc.option(fc.record({ seconds: fc.bigInt({ min: 0n, max: 9_000_000_000n }), nanos: fc.nat({ max: 999_999_999 }) }), {
      nil: undefined,
    }),
    type: fc.integer({ min: 0, max: 5 }),
    subtype: text,
    clusterId: text,
    nodeName: text,
    namespace: text,
    podName: text,
    containerId: text,
    containerName: text,
    data: fc.oneof(
      fc.constant(undefined),
      network.map((value) => ({ $case: 'network' as const, value })),
      container.map((value) => ({ $case: 'container' as const, value })),
    ),
  })
  .map((e) => RawEbpfEvent.fromPartial(e));

test('random valid tapio batches round-trip: one event each, ids, nanosecond timestamps and payload bytes exact', () => {
  const ingestor = new TapioIngestor();
  fc.assert(
    fc.property(fc.array(tapioEvent, { maxLength: 8 }), (sent) => {
      const { events, problems } = ingest(
        ingestor,
        EventBatch.encode({ events: sent, source: 'tapio', clusterId: 'c', nodeName: 'n' }).finish(),
      );
      assert.deepEqual(problems, []);
      assert.equal(events.length, sent.length);
      events.forEach((e, i) => {
        const m = sent[i]!;
        assert.equal(decodeRefusalOf(e), undefined);
        assert.equal(e.id, m.id);
        const ts = m.timestamp ? m.timestamp.seconds * 1_000_000_000n + BigInt(m.timestamp.nanos) : 0n;
        assert.equal(e.timestampUnixNs, ts);
        assert.deepEqual(e.payload, RawEbpfEvent.encode(m).finish());
        assert.ok(e.eventType.startsWith('tapio.'));
      });
    }),
    { numRuns: fuzzRuns() },
  );
});

/**
 * Every kept event's payload is one whole field-1 record of the input, in order: a view into the
 * input right after its `0a <length>` prefix, of exactly that length, that the generated decoder
 * reads.
 */
function assertRecords(data: Uint8Array, result: IngestResult, decode: (b: Uint8Array) => unknown, limits: IntakeLimits): void {
  if (result.tooLarge !== undefined) return;
  assert.ok(result.events.length <= limits.maxBatchEvents);
  let last = -1;
  for (const e of result.events) {
    if (decodeRefusalOf(e) !== undefined) continue;
    const p = e.payload;
    assert.equal(p.buffer, data.buffer, 'a view of the input');
    const at = p.byteOffset - data.byteOffset;
    assert.ok(at > last, 'in input order');
    last = at;
    // The prefix before the payload: field 1's tag and the length, as varints (either may be
    // written in more bytes than needed: 8a 00 is tag 10 too).
    let prefixOk = false;
    for (let k = 2; k <= 15 && at - k >= 0; k++) {
      const r = new BinaryReader(data.subarray(at - k, at));
      try {
        if (r.uint32() === 10 && r.uint32() === p.length && r.pos === k) prefixOk = true;
      } catch {
        // not this one
      }
    }
    assert.ok(prefixOk, `payload at ${at} follows a field-1 prefix of its length`);
    assert.doesNotThrow(() => decode(p));
    assert.ok(p.length <= limits.maxEventBytes);
  }
}

test('random bytes never throw and never yield an event that is not a whole record of the input', () => {
  const agents: Array<[Ingestor, (b: Uint8Array) => unknown, Uint8Array]> = [
    [new TapioIngestor(), (b) => RawEbpfEvent.decode(b), tapioBatch(TAPIO_CASES)],
    [new ElavaIngestor(), (b) => RawCloudEvent.decode(b), elavaBatch(ELAVA_CASES)],
    [new PorttiIngestor(), (b) => RawK8sEvent.decode(b), tapioBatch(TAPIO_CASES)],
  ];
  const limits = fc.record({ maxBatchEvents: fc.integer({ min: 1, max: 40 }), maxEventBytes: fc.integer({ min: 4, max: 400 }) });
  // Pure noise, and real batches with bytes flipped, cut or spliced in (closer to real damage).
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc
      .tuple(fc.nat({ max: 2 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 6 }), fc.nat())
      .map(([which, flips, cut]) => {
        const base = Uint8Array.from(agents[which]![2]);
        for (const [at, value] of flips) base[at % base.length] = value;
        return base.subarray(0, base.length - (cut % 20));
      }),
  );
  fc.assert(
    fc.property(fc.nat({ max: 2 }), bytes, limits, (which, data, l) => {
      const [ingestor, decode] = agents[which]!;
      const lim = { ...DEFAULT_LIMITS, ...l };
      const result = ingest(ingestor, data, lim);
      assertRecords(data, result, decode, lim);
    }),
    { numRuns: fuzzRuns() },
  );
});

/**
 * What the README's Agents table says a RawEbpfEvent becomes, from the generated decoder's tree
 * (strict UTF-8): the reference the TAPIO decoder (its strings interned, its timestamp read in
 * place, its event types cached) must agree with.
 */
function tapioReference(payload: Uint8Array, batch: { clusterId: string; nodeName: string }) {
  const m = RawEbpfEvent.decode(strictReader(payload));
  const kinds = ['unspecified', 'network', 'container', 'storage', 'memory', 'cpu'];
  const kind = kinds[m.type]!;
  const metadata: Record<string, string> = { [keys.PAYLOAD_FORMAT]: 'protobuf:tapio.v1.RawEbpfEvent' };
  const put = (k: string, v: string) => {
    if (v !== '') metadata[k] = v;
  };
  put(keys.K8S_CLUSTER_NAME, m.clusterId || batch.clusterId);
  put(keys.K8S_NODE_NAME, m.nodeName || batch.nodeName);
  put(keys.K8S_NAMESPACE_NAME, m.namespace);
  put(keys.K8S_POD_NAME, m.podName);
  const data = m.data?.$case === 'container' ? m.data.value : undefined;
  put(keys.CONTAINER_ID, m.containerId || (data?.containerId ?? ''));
  put(keys.K8S_CONTAINER_NAME, m.containerName || (data?.containerName ?? ''));
  return {
    id: m.id,
    timestampUnixNs: m.timestamp ? m.timestamp.seconds * 1_000_000_000n + BigInt(m.timestamp.nanos) : 0n,
    eventType: m.subtype === '' ? `tapio.${kind}` : `tapio.${kind}.${m.subtype.toLowerCase()}`,
    metadata,
  };
}

test('tapio: every event taken maps as the generated decoder reads its record, whatever the bytes (valid, merged, mutated)', () => {
  const ingestor = new TapioIngestor();
  // A few values that come again (interned strings, cached event types), and random ones.
  const common = fc.constantFrom('default', 'bench', 'tcp_retransmit', 'TCP_Retransmit', 'node-1', '');
  const mixed = fc.record({
    id: text,
    timestamp: fc.option(fc.record({ seconds: fc.bigInt({ min: 0n, max: 9_000_000_000n }), nanos: fc.nat({ max: 999_999_999 }) }), {
      nil: undefined,
    }),
    type: fc.integer({ min: 1, max: 5 }),
    subtype: fc.oneof(common, text),
    clusterId: fc.oneof(common, text),
    nodeName: common,
    namespace: fc.oneof(common, text),
    podName: text,
    containerId: fc.oneof(common, fc.string({ minLength: 60, maxLength: 90 })),
    containerName: common,
    data: fc.oneof(
      fc.constant(undefined),
      container.map((value) => ({ $case: 'container' as const, value })),
    ),
  });
  // One record: an event, or two concatenated (protobuf's merge: the generated decoder keeps the
  // last scalar and the last timestamp), then a few bytes flipped.
  const record = fc
    .tuple(mixed, fc.option(mixed, { nil: undefined }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 2 }))
    .map(([a, b, flips]) => {
      const one = (e: typeof a) => RawEbpfEvent.encode(RawEbpfEvent.fromPartial(e)).finish();
      const bytes = Buffer.concat(b === undefined ? [one(a)] : [one(a), one(b)]);
      for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value;
      return new Uint8Array(bytes);
    });
  fc.assert(
    fc.property(fc.array(record, { minLength: 1, maxLength: 6 }), fc.oneof(common, text), (records, cluster) => {
      const batch = { clusterId: cluster, nodeName: 'node-b' };
      const w = EventBatch.encode({ events: [], source: 'tapio', ...batch });
      for (const r of records) w.uint32(10).bytes(r);
      const data = w.finish();
      const { events } = ingest(ingestor, data);
      for (const e of events) {
        if (decodeRefusalOf(e) !== undefined) continue;
        const want = tapioReference(e.payload, batch);
        assert.deepEqual({ id: e.id, timestampUnixNs: e.timestampUnixNs, eventType: e.eventType, metadata: e.metadata }, want);
      }
    }),
    { numRuns: fuzzRuns() },
  );
});
