// Server reflection reads FileDescriptorProtos from the wire itself (src/server/descriptor-wire.ts)
// instead of loading @bufbuild/protobuf's reflection runtime at start: what it reads of every
// file of proto/'s descriptor set, and of descriptor.proto itself (extensions, oneofs, nested
// types and enums), equals what @bufbuild/protobuf decodes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, file_google_protobuf_descriptor, type DescriptorProto as Full } from '@bufbuild/protobuf/wkt';
import { readFileDescriptor, type DescriptorProto } from '../../src/server/descriptor-wire.js';
import { builtInDescriptorSet, splitFileDescriptorSet } from '../../src/server/reflection-index.js';

function message(m: Full): DescriptorProto {
  return {
    name: m.name,
    field: m.field.map((f) => ({ name: f.name, extendee: f.extendee, number: f.number })),
    nestedType: m.nestedType.map(message),
    enumType: m.enumType.map((e) => ({ name: e.name, value: e.value.map((v) => ({ name: v.name })) })),
    extension: m.extension.map((f) => ({ name: f.name, extendee: f.extendee, number: f.number })),
    oneofDecl: m.oneofDecl.map((o) => ({ name: o.name })),
  };
}

function expected(bytes: Uint8Array) {
  const f = fromBinary(FileDescriptorProtoSchema, bytes);
  return {
    name: f.name,
    package: f.package,
    dependency: f.dependency,
    messageType: f.messageType.map(message),
    enumType: f.enumType.map((e) => ({ name: e.name, value: e.value.map((v) => ({ name: v.name })) })),
    service: f.service.map((s) => ({ name: s.name, method: s.method.map((m) => ({ name: m.name })) })),
    extension: f.extension.map((x) => ({ name: x.name, extendee: x.extendee, number: x.number })),
  };
}

test("every file of proto/'s descriptor set reads as @bufbuild/protobuf decodes it", () => {
  const files = splitFileDescriptorSet(builtInDescriptorSet());
  assert.ok(files.length > 10, `${files.length} files`);
  let services = 0;
  for (const bytes of files) {
    const read = readFileDescriptor(bytes);
    assert.deepEqual(read, expected(bytes), read.name);
    services += read.service.length;
  }
  assert.ok(services > 3, `${services} services`);
});

test('descriptor.proto itself (nested types, enums, oneofs) and an extension declared in a file read the same', () => {
  const descriptor = toBinary(FileDescriptorProtoSchema, file_google_protobuf_descriptor.proto);
  assert.deepEqual(readFileDescriptor(descriptor), expected(descriptor));
  const withExtension = toBinary(
    FileDescriptorProtoSchema,
    create(FileDescriptorProtoSchema, {
      name: 'ext.proto',
      package: 'ext',
      dependency: ['google/protobuf/descriptor.proto'],
      extension: [{ name: 'flag', extendee: '.google.protobuf.FieldOptions', number: 50_001 }],
    }),
  );
  const read = readFileDescriptor(withExtension);
  assert.deepEqual(read.extension, [{ name: 'flag', extendee: '.google.protobuf.FieldOptions', number: 50_001 }]);
  assert.deepEqual(read, expected(withExtension));
});
