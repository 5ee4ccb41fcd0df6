import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { DESCRIPTOR_SET_BASE64 } from '../gen/descriptor-set.js';
import { readFileDescriptor, type DescriptorProto, type EnumDescriptorProto, type FieldDescriptorProto } from './descriptor-wire.js';

interface IndexedFile {
  /** The serialized FileDescriptorProto, byte for byte as it was in the set. */
  readonly bytes: Uint8Array;
  readonly dependencies: readonly string[];
}

/**
 * The lookup table behind reflection: file name → file, fully-qualified symbol → file name,
 * message → its extensions. Built once, when the gRPC server is built.
 */
export class DescriptorIndex {
  private readonly files = new Map<string, IndexedFile>();
  private readonly symbols = new Map<string, string>();
  private readonly services = new Set<string>();
  private readonly messages = new Set<string>();
  /** Extended message → extension field number → the file declaring the extension. */
  private readonly extensions = new Map<string, Map<number, string>>();

  /**
   * Adds the files of a serialized google.protobuf.FileDescriptorSet (`buf build
   * --as-file-descriptor-set`, `protoc --descriptor_set_out --include_imports`). A file name already
   * in the index keeps its first version (google/protobuf/*.proto arrive in many sets).
   */
  addSet(set: Uint8Array): void {
    for (const bytes of splitFileDescriptorSet(set)) this.addFile(bytes);
  }

  private addFile(bytes: Uint8Array): void {
    const file = readFileDescriptor(bytes);
    if (this.files.has(file.name)) return;
    this.files.set(file.name, { bytes, dependencies: file.dependency });
    const scope = file.package === '' ? '' : `${file.package}.`;
    const define = (name: string): void => {
      if (!this.symbols.has(name)) this.symbols.set(name, file.name);
    };
    for (const s of file.service) {
      define(scope + s.name);
      this.services.add(scope + s.name);
      for (const m of s.method) define(`${scope}${s.name}.${m.name}`);
    }
    const defineEnum = (e: EnumDescriptorProto, prefix: string): void => {
      define(prefix + e.name);
      // Enum values are scoped beside their enum, as in C++ (protobuf's scoping rule).
      for (const v of e.value) define(prefix + v.name);
    };
    const defineExtension = (x: FieldDescriptorProto, prefix: string): void => {
      define(prefix + x.name);
      const extendee = x.extendee.replace(/^\./, '');
      let numbers = this.extensions.get(extendee);
      if (!numbers) this.extensions.set(extendee, (numbers = new Map()));
      if (!numbers.has(x.number)) numbers.set(x.number, file.name);
    };
    const defineMessage = (m: DescriptorProto, prefix: string): void => {
      const name = prefix + m.name;
      define(name);
      this.messages.add(name);
      for (const f of m.field) define(`${name}.${f.name}`);
      for (const o of m.oneofDecl) define(`${name}.${o.name}`);
      for (const n of m.nestedType) defineMessage(n, `${name}.`);
      for (const e of m.enumType) defineEnum(e, `${name}.`);
      for (const x of m.extension) defineExtension(x, `${name}.`);
    };
    for (const m of file.messageType) defineMessage(m, scope);
    for (const e of file.enumType) defineEnum(e, scope);
    for (const x of file.extension) defineExtension(x, scope);
  }

  hasService(name: string): boolean {
    return this.services.has(name);
  }

  /** The file declaring `symbol`, if any. */
  fileOfSymbol(symbol: string): string | undefined {
    return this.symbols.get(symbol);
  }

  /** The file named `name` followed by everything it imports, transitively, each once. */
  withDependencies(name: string): Uint8Array[] | undefined {
    if (!this.files.has(name)) return undefined;
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const visit = (n: string): void => {
      const file = this.files.get(n);
      if (!file || seen.has(n)) return;
      seen.add(n);
      out.push(file.bytes);
      for (const d of file.dependencies) visit(d);
    };
    visit(name);
    return out;
  }

  /** The file declaring extension `number` of `type`. */
  fileOfExtension(type: string, number: number): string | undefined {
    return this.extensions.get(type)?.get(number);
  }

  /** The extension numbers of message `type` (none: []); undefined for a type not in the index. */
  extensionNumbers(type: string): number[] | undefined {
    if (!this.messages.has(type)) return undefined;
    return [...(this.extensions.get(type)?.keys() ?? [])].sort((a, b) => a - b);
  }
}

/**
 * The FileDescriptorProtos of a FileDescriptorSet as they are on the wire (field 1, repeated),
 * sliced, not decoded and re-encoded: clients get exactly the bytes buf wrote.
 */
export function splitFileDescriptorSet(set: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(set);
  const files: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(reader.bytes());
    else reader.skip(wireType, field);
  }
  return files;
}

let builtIn: Uint8Array | undefined;

/** The descriptor set of proto/ (every file with its imports), as `npm run gen` committed it. */
export function builtInDescriptorSet(): Uint8Array {
  builtIn ??= Buffer.from(DESCRIPTOR_SET_BASE64, 'base64');
  return builtIn;
}
