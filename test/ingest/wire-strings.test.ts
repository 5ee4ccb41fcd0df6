import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { isInvalidUtf8, strictReader } from '../../src/ingest/event-decoder.js';
import { freshString, repeatedString } from '../../src/ingest/wire-strings.js';

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
