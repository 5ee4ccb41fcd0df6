import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

/**
 * The byte-level half of the OTLP encoder (src/emit/otlp-encode.ts): sizes of length-delimited
 * fields, a preallocated buffer written front to back, and JSON → AnyValue for structured bodies.
 */

/** Nesting past this in a JSON payload: the payload goes as a string body instead. */
const MAX_JSON_DEPTH = 64;
const LEN = WireType.LengthDelimited;

export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** A length-delimited field of `size` bytes, tag (fields < 16: one byte) and prefix included. */
export function lenField(_field: number, size: number): number {
  return 1 + varintSize(size) + size;
}

export function strSize(field: number, s: string): number {
  return lenField(field, Buffer.byteLength(s));
}

/** KeyValue{key, value: AnyValue{string_value}} as one repeated field. */
export function attributeSize(key: string, value: string): number {
  const kv = strSize(1, key) + lenField(2, strSize(1, value));
  return lenField(6, kv);
}

/** A preallocated buffer written front to back; field numbers here are all below 16 (one-byte tags). */
export class Out {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  varintField(field: number, n: number): void {
    this.buf[this.pos++] = field << 3;
    this.varint(n);
  }

  /** A length-delimited field's tag and length; its `size` bytes follow. */
  len(field: number, size: number): void {
    this.buf[this.pos++] = (field << 3) | 2;
    this.varint(size);
  }

  str(field: number, s: string): void {
    this.len(field, Buffer.byteLength(s));
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  bytesField(field: number, b: Uint8Array): void {
    this.len(field, b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  hexField(field: number, hex: string): void {
    this.len(field, hex.length / 2);
    this.pos += this.buf.write(hex, this.pos, 'hex');
  }

  fixed64(field: number, v: bigint): void {
    this.buf[this.pos++] = (field << 3) | 1;
    this.buf.writeBigUInt64LE(v, this.pos);
    this.pos += 8;
  }

  attribute(field: number, key: string, value: string): void {
    const keyLen = Buffer.byteLength(key);
    const valueLen = Buffer.byteLength(value);
    const any = 1 + varintSize(valueLen) + valueLen;
    this.len(field, 1 + varintSize(keyLen) + keyLen + 1 + varintSize(any) + any);
    this.len(1, keyLen);
    this.pos += this.buf.write(key, this.pos, 'utf8');
    this.len(2, any);
    this.len(1, valueLen);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }
}

/** A JSON payload as AnyValue bytes; null when it is not JSON or nests too deep. */
export function jsonBody(payload: Uint8Array): Uint8Array | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    return null;
  }
  const w = new BinaryWriter();
  return writeAnyValue(w, value, 0) ? w.finish() : null;
}

/** The fields of one AnyValue for `value`; false when nesting passes {@link MAX_JSON_DEPTH}. */
function writeAnyValue(w: BinaryWriter, value: unknown, depth: number): boolean {
  if (depth > MAX_JSON_DEPTH) return false;
  switch (typeof value) {
    case 'string':
      w.tag(1, LEN).string(value);
      return true;
    case 'boolean':
      w.tag(2, WireType.Varint).bool(value);
      return true;
    case 'number':
      if (Number.isSafeInteger(value)) w.tag(3, WireType.Varint).int64(value);
      else w.tag(4, WireType.Bit64).double(value);
      return true;
    case 'object': {
      if (value === null) return true; // an empty AnyValue
      if (Array.isArray(value)) {
        w.tag(5, LEN).fork(); // ArrayValue
        for (const item of value) {
          w.tag(1, LEN).fork();
          if (!writeAnyValue(w, item, depth + 1)) return false;
          w.join();
        }
        w.join();
        return true;
      }
      w.tag(6, LEN).fork(); // KeyValueList
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        w.tag(1, LEN).fork().tag(1, LEN).string(k).tag(2, LEN).fork();
        if (!writeAnyValue(w, v, depth + 1)) return false;
        w.join().join();
      }
      w.join();
      return true;
    }
    default:
      return true;
  }
}
