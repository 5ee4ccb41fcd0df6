import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { isInvalidUtf8, strictReader } from '../../src/ingest/event-decoder.js';
import { freshString, isAsciiRange, repeatedString, StringTable } from '../../src/ingest/wire-strings.js';

/** A reader over length-prefixed strings, as a Buffer (grpc-js) or a plain Uint8Array. */
function reader(values: Array<string | Uint8Array>, plain = false) {
  const w = new BinaryWriter();
  for (const v of values) {
    if (typeof v === 'string') w.string(v);
    else w.bytes(v);
  }
  const bytes = w.finish();
  return strictReader(plain ? bytes : Buffer.from(bytes));
}

test('strings read as the generated reader reads them, ASCII or not, from a Buffer or a Uint8Array', () => {
  const values = ['', 'default', 'bench-loadgen-7d9f8c6b5-x2k4q', 'x'.repeat(65), 'värde ✓', '😀', 'default'];
  for (const plain of [false, true]) {
    const r = reader(values, plain);
    assert.deepEqual(
      values.map((_, i) => (i % 2 ? freshString(r) : repeatedString(r))),
      values,
    );
    assert.equal(r.pos, r.len);
  }
});

test('a repeated value is the same string again; different bytes never get another string', () => {
  // Every pair of one-character strings a-z/A-Z, many sharing slots of the table.
  const values = Array.from({ length: 52 * 52 }, (_, i) => {
    const c = (n: number) => String.fromCharCode(n < 26 ? 97 + n : 65 + n - 26);
    return c(Math.floor(i / 52)) + c(i % 52);
  });
  const r = reader([...values, ...values]);
  const read = [...values, ...values].map(() => repeatedString(r));
  assert.deepEqual(read, [...values, ...values]);
  const r2 = reader(['namespace', 'namespace']);
  assert.equal(repeatedString(r2), repeatedString(r2));
});

test('invalid UTF-8 is still refused, and a length past the end still throws', () => {
  assert.throws(
    () => repeatedString(reader([new Uint8Array([0x61, 0xff])])),
    (err) => isInvalidUtf8(err),
  );
  assert.throws(
    () => freshString(reader([new Uint8Array([0xc3])])),
    (err) => isInvalidUtf8(err),
  );
  const cut = strictReader(Buffer.from([5, 0x61, 0x62]));
  assert.throws(() => repeatedString(cut), /premature EOF|out of range/i);
});

test('a StringTable keeps a prefixed form per entry: the same string each time, rebuilt once its entry is replaced', () => {
  const table = new StringTable({ slots: 2, prefix: 'otel.attr.' });
  // Two slots: 26 keys collide, each read replacing an entry the next prefixed() may ask for.
  const keys = Array.from({ length: 26 }, (_, i) => `key.${String.fromCharCode(97 + i)}`);
  const r = reader([...keys, ...keys, 'http.method', 'http.method']);
  for (const key of [...keys, ...keys]) {
    const got = table.read(r);
    assert.equal(got, key);
    assert.ok(table.lastSlot >= 0 && table.lastSlot < 2);
    assert.equal(table.prefixed(table.lastSlot, got), `otel.attr.${key}`);
  }
  const first = table.read(r);
  const slot = table.lastSlot;
  const prefixed = table.prefixed(slot, first);
  assert.equal(table.read(r), first);
  assert.equal(table.prefixed(table.lastSlot, first), prefixed, 'built once per entry');
  // An entry replaced between the read and the question (a nested read) is not answered from the table.
  const other = reader(['aa', 'zz']);
  const aa = table.read(other);
  const aaSlot = table.lastSlot;
  table.read(other);
  assert.equal(table.prefixed(aaSlot, aa), 'otel.attr.aa');
  assert.equal(table.prefixed(-1, 'x'), 'otel.attr.x');
});

test('a StringTable reads long, empty and non-ASCII strings without interning them, strictly', () => {
  const table = new StringTable({ slots: 16, maxBytes: 8 });
  const values = ['123456789', '', 'värde', '12345678'];
  const r = reader(values, true);
  const slots: number[] = [];
  for (const v of values) {
    assert.equal(table.read(r), v);
    slots.push(table.lastSlot);
  }
  assert.deepEqual(
    slots.map((s) => s >= 0),
    [false, false, false, true],
  );
  assert.throws(
    () => table.read(reader([new Uint8Array([0x61, 0x62, 0xe2, 0x82])])),
    (err) => isInvalidUtf8(err),
  );
  assert.throws(() => table.read(strictReader(Buffer.from([9, 0x61]))), /premature EOF|out of range/i);
});

test('isAsciiRange: true exactly when no byte of the range has its high bit set', () => {
  const bytes = Buffer.from('abc\u00e9def', 'utf8');
  assert.equal(isAsciiRange(bytes, 0, 3), true);
  assert.equal(isAsciiRange(bytes, 0, bytes.length), false);
  assert.equal(isAsciiRange(bytes, 5, bytes.length), true);
  assert.equal(isAsciiRange(bytes, 2, 2), true);
  assert.equal(isAsciiRange(Uint8Array.from([0x7f, 0x80]), 0, 2), false);
});
