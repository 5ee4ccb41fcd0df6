// Server reflection's lookup table, property by property: whatever a client asks, the answer is one
// response, never a throw; a found file comes with every file it imports (what a strict client's
// pool needs), each once, bytes exactly as in the descriptor set; a name not in the set is NOT_FOUND.
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import * as fc from 'fast-check';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { answer } from '../../src/server/reflection.js';
import { builtInDescriptorSet, DescriptorIndex, splitFileDescriptorSet } from '../../src/server/reflection-index.js';
import { fuzzRuns } from './runs.js';

const slices = splitFileDescriptorSet(builtInDescriptorSet());
const files = slices.map((bytes) => ({ bytes: Buffer.from(bytes), proto: fromBinary(FileDescriptorProtoSchema, bytes) }));
const byName = new Map(files.map((f) => [f.proto.name, f]));
const index = new DescriptorIndex();
index.addSet(builtInDescriptorSet());

/** Reference: the top-level and nested names each file declares (messages, enums, services, methods). */
const declared = new Map<string, string>();
for (const { proto } of files) {
  const scope = proto.package ? `${proto.package}.` : '';
  const messages = (ms: typeof proto.messageType, prefix: string): void => {
    for (const m of ms) {
      declared.set(prefix + m.name, proto.name);
      for (const e of m.enumType) declared.set(`${prefix}${m.name}.${e.name}`, proto.name);
      messages(m.nestedType, `${prefix}${m.name}.`);
    }
  };
  messages(proto.messageType, scope);
  for (const e of proto.enumType) declared.set(scope + e.name, proto.name);
  for (const s of proto.service) {
    declared.set(scope + s.name, proto.name);
    for (const m of s.method) declared.set(`${scope}${s.name}.${m.name}`, proto.name);
  }
}
const symbols = [...declared.keys()];
const fileNames = [...byName.keys()];

/** A known name, a near miss of one (cut, extended, case-changed), or anything at all. */
const name = (known: string[]) =>
  fc.oneof(
    fc.constantFrom(...known),
    fc.tuple(fc.constantFrom(...known), fc.nat(40)).map(([n, cut]) => n.slice(0, Math.max(0, n.length - 1 - (cut % n.length)))),
    fc.tuple(fc.constantFrom(...known), fc.string({ maxLength: 4 })).map(([n, tail]) => n + (tail || '.')),
    fc.constantFrom(...known).map((n) => n.toUpperCase()),
    fc.string({ maxLength: 60 }),
  );

const request = fc.oneof(
  name(symbols).map((value) => ({ $case: 'fileContainingSymbol' as const, value })),
  name(fileNames).map((value) => ({ $case: 'fileByFilename' as const, value })),
  fc.tuple(name(symbols), fc.integer({ min: -1, max: 1 << 29 })).map(([containingType, extensionNumber]) => ({
    $case: 'fileContainingExtension' as const,
    value: { containingType, extensionNumber },
  })),
  name(symbols).map((value) => ({ $case: 'allExtensionNumbersOfType' as const, value })),
);

test('every request gets one answer: a found file with its whole import closure, bytes as built, or NOT_FOUND', () => {
  fc.assert(
    fc.property(request, (r) => {
      const a = answer(index, [], { host: '', messageRequest: r });
      const expected =
        r.$case === 'fileContainingSymbol'
          ? declared.get(r.value)
          : r.$case === 'fileByFilename' && byName.has(r.value)
            ? r.value
            : undefined;
      if (a?.$case === 'fileDescriptorResponse') {
        const got = a.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
        const names = got.map((f) => f.name);
        if (expected !== undefined) assert.equal(names[0], expected);
        assert.equal(new Set(names).size, names.length, 'each file once');
        for (const f of got) for (const d of f.dependency) assert.ok(names.includes(d), `${f.name} imports ${d}, not sent`);
        a.value.fileDescriptorProto.forEach((b, i) => assert.ok(Buffer.from(b).equals(byName.get(names[i]!)!.bytes)));
        return;
      }
      if (a?.$case === 'allExtensionNumbersResponse') {
        assert.equal(r.$case, 'allExtensionNumbersOfType');
        assert.deepEqual(a.value.extensionNumber, []); // proto/ declares no extensions
        return;
      }
      assert.equal(expected, undefined, `${JSON.stringify(r)} is declared but was not found`);
      assert.equal(a?.$case, 'errorResponse');
      assert.equal(a.value.errorCode, status.NOT_FOUND);
    }),
    { numRuns: fuzzRuns() },
  );
});

test('splitting a FileDescriptorSet gives back each file byte for byte, in order, skipping other fields', () => {
  const other = fc.oneof(
    fc.tuple(fc.integer({ min: 2, max: 1000 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map(
      ([field, v]) =>
        (w: BinaryWriter) =>
          w.tag(field, WireType.Varint).uint64(v),
    ),
    fc.tuple(fc.integer({ min: 2, max: 1000 }), fc.uint8Array({ maxLength: 20 })).map(
      ([field, b]) =>
        (w: BinaryWriter) =>
          w.tag(field, WireType.LengthDelimited).bytes(b),
    ),
  );
  fc.assert(
    fc.property(fc.shuffledSubarray(files), fc.array(fc.tuple(fc.nat(), other), { maxLength: 5 }), (subset, extras) => {
      const w = new BinaryWriter();
      subset.forEach((f, i) => {
        for (const [at, write] of extras) if (at % (subset.length + 1) === i) write(w);
        w.tag(1, WireType.LengthDelimited).bytes(f.bytes);
      });
      const split = splitFileDescriptorSet(w.finish()).map((b) => Buffer.from(b));
      assert.equal(split.length, subset.length);
      split.forEach((b, i) => assert.ok(b.equals(subset[i]!.bytes), subset[i]!.proto.name));
    }),
    { numRuns: fuzzRuns() },
  );
});
