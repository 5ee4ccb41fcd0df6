import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { crc32, crc32Js } from '../../src/buffer/durable/crc32.js';
import {
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  SEGMENT_HEADER,
  Segment,
  decodeRecord,
  encodeRecord,
  recordBytes,
} from '../../src/buffer/durable/record-codec.js';
import { scanSegment } from '../../src/buffer/durable/segment-scan.js';

describe('record codec', () => {
  test('crc32 is IEEE CRC-32: the check value of "123456789" is 0xCBF43926, native and JS alike', () => {
    const check = new TextEncoder().encode('123456789');
    assert.equal(crc32(check), 0xcbf43926);
    assert.equal(crc32Js(check), 0xcbf43926);
    for (const size of [0, 1, 7, 1000, 65_537]) {
      const data = randomBytes(size);
      assert.equal(crc32Js(data), crc32(data));
    }
  });

  test('a record is [u32 marker][u32 payload length][f64 seq][f64 appendedAtMs][u32 payload crc][u32 header crc][payload], little-endian', () => {
    const payload = new TextEncoder().encode('hello');
    const buf = Buffer.alloc(recordBytes(payload.length) + 3);
    assert.equal(encodeRecord(buf, 3, 42, 1_700_000_000_123, payload), 3 + HEADER_BYTES + 5);
    assert.equal(HEADER_BYTES, 32);
    assert.deepEqual([...buf.subarray(3, 7)], [0x50, 0x4b, 0x52, 0xd1]);
    assert.equal(buf.readUInt32LE(7), 5);
    assert.equal(buf.readDoubleLE(11), 42);
    assert.equal(buf.readDoubleLE(19), 1_700_000_000_123);
    assert.equal(buf.readUInt32LE(27), crc32(payload));
    assert.equal(buf.readUInt32LE(31), crc32(buf.subarray(3, 31)));
    assert.equal(buf.subarray(35).toString(), 'hello');
    const d = decodeRecord(buf, 3);
    assert.equal(d.kind, 'ok');
    if (d.kind !== 'ok') return;
    assert.deepEqual(
      [d.size, d.record.seq, d.record.appendedAtMs, Buffer.from(d.record.payload).toString()],
      [37, 42, 1_700_000_000_123, 'hello'],
    );
    assert.equal(Object.getPrototypeOf(d.record.payload), Uint8Array.prototype, 'a plain Uint8Array view');
  });

  test('a segment starts with "POLKULOG", version 2 and the checksum of both', () => {
    assert.equal(SEGMENT_HEADER.subarray(0, 8).toString('latin1'), 'POLKULOG');
    assert.equal(SEGMENT_HEADER.readUInt32LE(8), 2);
    assert.equal(SEGMENT_HEADER.readUInt32LE(12), crc32(SEGMENT_HEADER.subarray(0, 12)));
    assert.ok(SEGMENT_HEADER.readUInt32LE(0) > 64 * 1024 * 1024, 'read as a version-1 length word, implausible');
  });

  test('decoding tells a short buffer, a damaged header and a bad payload checksum apart', () => {
    const buf = Buffer.alloc(recordBytes(10));
    encodeRecord(buf, 0, 1, 2, new Uint8Array(10));
    assert.deepEqual(decodeRecord(buf, 0, 5), { kind: 'short' });
    assert.deepEqual(decodeRecord(buf, 0, buf.length - 1), { kind: 'short', size: buf.length });
    buf[35] = 1;
    assert.deepEqual(decodeRecord(buf, 0), { kind: 'bad-crc', size: buf.length });
    for (const at of [0, 4, 8, 16, 24, 28]) {
      const copy = Buffer.from(buf);
      copy[at] = copy[at]! ^ 0x10;
      assert.deepEqual(decodeRecord(copy, 0), { kind: 'bad-header' }, `byte ${at}`);
    }
    assert.ok(MAX_PAYLOAD_BYTES < 64 * 1024 * 1024);
  });

  test('a segment index grows past its first capacity and remembers records known to be corrupt', () => {
    const seg = new Segment(100, '/nowhere');
    for (let k = 0; k < 5000; k++) seg.push(k * 30);
    seg.end = 5000 * 30;
    assert.deepEqual([seg.count, seg.offset(4999), seg.endOf(4999), seg.endOf(10)], [5000, 4999 * 30, 150_000, 330]);
    seg.markCorrupt(0);
    seg.markCorrupt(0);
    assert.deepEqual([seg.isCorrupt(0), seg.offset(0), seg.corruptCount, seg.isCorrupt(1)], [true, 0, 1, false]);
    seg.clampTo(100 + 3000);
    assert.deepEqual([seg.count, seg.end], [3000, 3000 * 30]);
  });
});

describe('segment scan', () => {
  test('headers and records across read-chunk boundaries are framed alike at every chunk size, checked or not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-scan-'));
    try {
      const path = join(dir, '00000000000000000001.log');
      const sizes = [0, 1, 5, 100, 7, 300, 2, 64, 33, 0, 250, 9];
      const buf = Buffer.alloc(sizes.reduce((sum, n) => sum + recordBytes(n), 0));
      const offsets: number[] = [];
      let at = 0;
      sizes.forEach((n, i) => {
        offsets.push(at);
        at = encodeRecord(buf, at, 1 + i, 1000 + i, new Uint8Array(n).fill(i));
      });
      writeFileSync(path, Buffer.concat([SEGMENT_HEADER, buf]));
      for (const verify of [false, true]) {
        for (let chunk = 1; chunk <= 400; chunk++) {
          const file = await open(path, 'r');
          const seg = new Segment(1, path);
          const result = await scanSegment(file, seg, { verify, last: true, chunkBytes: chunk });
          await file.close();
          assert.deepEqual(
            result,
            { corruptRecords: 0, gapEvents: 0, lostBytes: 0, regions: [], tailDamageBytes: 0, tornTailBytes: 0 },
            `chunk ${chunk}`,
          );
          assert.deepEqual(
            Array.from({ length: seg.count }, (_, k) => seg.offset(k)),
            offsets.map((o) => o + SEGMENT_HEADER.length),
            `chunk ${chunk}, verify ${verify}`,
          );
          assert.deepEqual([seg.end, seg.newestMs], [buf.length + SEGMENT_HEADER.length, 1000 + sizes.length - 1]);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
