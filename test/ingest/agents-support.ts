import assert from 'node:assert/strict';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { decodeRefusalOf, type DecodeRefusal } from '../../src/ingest/event-decoder.js';
import type { IngestResult, Ingestor } from '../../src/ingest/ingestor.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../src/ingest/intake-rules.js';

/** Shared by the agents' ingestor tests (test/ingest/agents-*.test.ts). */

/** Runs a synchronous ingestor on `data` as the hub would for a batch from `source`. */
export function ingestWith(
  ingestor: Ingestor,
  data: Uint8Array,
  limits: Partial<IntakeLimits> = {},
  source = ingestor.sources![0]!,
): IngestResult {
  const result = ingestor.ingest({ source, cluster: '', format: 'protobuf', limits: { ...DEFAULT_LIMITS, ...limits } }, data);
  assert.ok(!(result instanceof Promise), 'agent ingestors answer synchronously');
  return result;
}

/** The decoder's refusal attached to a placeholder event (undefined for a kept event). */
export function refusal(event: Event): DecodeRefusal | undefined {
  return decodeRefusalOf(event);
}

/** Replaces the first byte of `marker` (an ASCII string in `bytes`) with 0xff: invalid UTF-8 there. */
export function corrupt(bytes: Uint8Array, marker: string): Uint8Array {
  const copy = Uint8Array.from(bytes);
  const needle = Buffer.from(marker);
  const at = Buffer.from(copy).indexOf(needle);
  assert.ok(at >= 0, `marker ${marker} is in the bytes`);
  copy[at] = 0xff;
  return copy;
}

/** A batch of field-1 records around the given event encodings, then `tail` (other batch fields). */
export function batchOf(records: Uint8Array[], tail: Uint8Array = new Uint8Array(0)): Uint8Array {
  const w = new BinaryWriter();
  for (const r of records) w.uint32(10).bytes(r);
  w.raw(tail);
  return w.finish();
}

/** The bytes of one unknown field (number 999, a string): forward compatibility. */
export function unknownField(): Uint8Array {
  return new BinaryWriter()
    .uint32((999 << 3) | 2)
    .string('from a newer agent')
    .finish();
}

/** 2025-11-24T16:00:00.123456789Z: about 2^60.6 ns, far past 2^53, so a double would lose the last digits. */
export const BIG_TS = { seconds: 1_764_000_000n, nanos: 123_456_789 };
/** {@link BIG_TS} in nanoseconds. */
export const BIG_TS_NS = BIG_TS.seconds * 1_000_000_000n + BigInt(BIG_TS.nanos);
