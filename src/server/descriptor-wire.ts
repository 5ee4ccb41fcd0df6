import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

// The parts of google/protobuf/descriptor.proto that server reflection indexes, read straight
// from the wire with the BinaryReader the generated codecs already use. Decoding them with
// @bufbuild/protobuf's FileDescriptorProtoSchema instead loads its reflection runtime and the
// well-known types at start (about 5 MB of memory for a gateway that may never be asked).
// Field numbers are descriptor.proto's; every other field is skipped.

export interface FileDescriptorProto {
  name: string;
  package: string;
  dependency: string[];
  messageType: DescriptorProto[];
  enumType: EnumDescriptorProto[];
  service: ServiceDescriptorProto[];
  extension: FieldDescriptorProto[];
}

export interface DescriptorProto {
  name: string;
  field: FieldDescriptorProto[];
  nestedType: DescriptorProto[];
  enumType: EnumDescriptorProto[];
  extension: FieldDescriptorProto[];
  oneofDecl: Array<{ name: string }>;
}

export interface FieldDescriptorProto {
  name: string;
  /** The extended message of an extension, fully qualified with a leading dot. */
  extendee: string;
  number: number;
}

export interface EnumDescriptorProto {
  name: string;
  value: Array<{ name: string }>;
}

export interface ServiceDescriptorProto {
  name: string;
  method: Array<{ name: string }>;
}

/** Calls `field` for each field of the message in `bytes` (length-delimited ones get a sub-reader). */
function each(bytes: Uint8Array, field: (no: number, r: BinaryReader, wireType: WireType) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wireType] = r.tag();
    if (!field(no, r, wireType)) r.skip(wireType, no);
  }
}

const LD = WireType.LengthDelimited;

function named(bytes: Uint8Array): { name: string } {
  const out = { name: '' };
  each(bytes, (no, r, wt) => (no === 1 && wt === LD ? ((out.name = r.string()), true) : false));
  return out;
}

function field(bytes: Uint8Array): FieldDescriptorProto {
  const out: FieldDescriptorProto = { name: '', extendee: '', number: 0 };
  each(bytes, (no, r, wt) => {
    if (no === 1 && wt === LD) out.name = r.string();
    else if (no === 2 && wt === LD) out.extendee = r.string();
    else if (no === 3 && wt === WireType.Varint) out.number = r.int32();
    else return false;
    return true;
  });
  return out;
}

function enumType(bytes: Uint8Array): EnumDescriptorProto {
  const out: EnumDescriptorProto = { name: '', value: [] };
  each(bytes, (no, r, wt) => {
    if (wt !== LD) return false;
    if (no === 1) out.name = r.string();
    else if (no === 2) out.value.push(named(r.bytes()));
    else return false;
    return true;
  });
  return out;
}

function message(bytes: Uint8Array): DescriptorProto {
  const out: DescriptorProto = { name: '', field: [], nestedType: [], enumType: [], extension: [], oneofDecl: [] };
  each(bytes, (no, r, wt) => {
    if (wt !== LD) return false;
    if (no === 1) out.name = r.string();
    else if (no === 2) out.field.push(field(r.bytes()));
    else if (no === 3) out.nestedType.push(message(r.bytes()));
    else if (no === 4) out.enumType.push(enumType(r.bytes()));
    else if (no === 6) out.extension.push(field(r.bytes()));
    else if (no === 8) out.oneofDecl.push(named(r.bytes()));
    else return false;
    return true;
  });
  return out;
}

function service(bytes: Uint8Array): ServiceDescriptorProto {
  const out: ServiceDescriptorProto = { name: '', method: [] };
  each(bytes, (no, r, wt) => {
    if (wt !== LD) return false;
    if (no === 1) out.name = r.string();
    else if (no === 2) out.method.push(named(r.bytes()));
    else return false;
    return true;
  });
  return out;
}

/** A serialized google.protobuf.FileDescriptorProto: what reflection indexes of it. */
export function readFileDescriptor(bytes: Uint8Array): FileDescriptorProto {
  const out: FileDescriptorProto = { name: '', package: '', dependency: [], messageType: [], enumType: [], service: [], extension: [] };
  each(bytes, (no, r, wt) => {
    if (wt !== LD) return false;
    if (no === 1) out.name = r.string();
    else if (no === 2) out.package = r.string();
    else if (no === 3) out.dependency.push(r.string());
    else if (no === 4) out.messageType.push(message(r.bytes()));
    else if (no === 5) out.enumType.push(enumType(r.bytes()));
    else if (no === 6) out.service.push(service(r.bytes()));
    else if (no === 7) out.extension.push(field(r.bytes()));
    else return false;
    return true;
  });
  return out;
}
