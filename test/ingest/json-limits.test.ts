import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonIngestor } from '../../src/ingest/json.js';
import type { IngestResult } from '../../src/ingest/ingestor.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../src/ingest/intake-rules.js';
import { hub } from '../../src/hub/builder.js';
import { InMemoryEmitter } from '../../src/testing/in-memory-emitter.js';

const ingestor = new JsonIngestor();
const MiB = 1024 * 1024;

function ingest(data: string | Uint8Array, format = '', limits?: Partial<IntakeLimits>): IngestResult {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const result = ingestor.ingest(
    { source: 'agent-1', cluster: 'c1', format, ...(limits ? { limits: { ...DEFAULT_LIMITS, ...limits } } : {}) },
    bytes,
  );
  assert.ok(!(result instanceof Promise));
  return result;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

// --- Amplification: counted while decoding -------------------------------------------------------

test('4 MiB of "{}" lines stops at element 10,001: the whole message is too large, nothing is built', () => {
  const body = '{}\n'.repeat(Math.floor((4 * MiB) / 3));
  const r = ingest(body, 'ndjson');
  assert.match(r.tooLarge ?? '', /more than 10000 events in one message \(limit POLKU_MAX_BATCH_EVENTS=10000\)/);
  // Reading stopped at the start of line 10,001.
  assert.match(r.tooLarge!, new RegExp(`reading stopped at byte ${10_000 * 3}$`));
  assert.equal(r.events.length, 0);
  assert.equal(r.problems.length, 0);
});

test('a 4 MiB array of {} stops at element 10,001 too, with or without a format hint', () => {
  const body = `[${'{},'.repeat(Math.floor((4 * MiB) / 3))}{}]`;
  for (const format of ['', 'json']) {
    const r = ingest(body, format);
    assert.match(r.tooLarge ?? '', /limit POLKU_MAX_BATCH_EVENTS=10000/, format);
    assert.equal(r.events.length, 0);
  }
});

test('exactly maxBatchEvents elements are accepted; one more is too many, bad elements counted alike', () => {
  assert.equal(ingest('{}\n'.repeat(10_000), 'ndjson').events.length, 10_000);
  assert.equal(ingest(`[${Array(10_000).fill('{}').join(',')}]`).events.length, 10_000);
  assert.ok(ingest('{}\n'.repeat(10_001), 'ndjson').tooLarge);
  // Problems are elements too: 3 good + 2 bad lines against a limit of 4.
  const r = ingest('{}\nbad\n{}\n[]\n{}\n', 'ndjson', { maxBatchEvents: 4 });
  assert.match(r.tooLarge ?? '', /limit POLKU_MAX_BATCH_EVENTS=4/);
  // Blank lines are not elements.
  assert.equal(ingest('{}\n\n\n   \n{}\n', 'ndjson', { maxBatchEvents: 2 }).events.length, 2);
});

test('through a hub, too many raw events are one BATCH_TOO_LARGE naming the limit, and the hub goes on', async () => {
  const memory = new InMemoryEmitter();
  const h = hub().ingestor(new JsonIngestor()).emitter(memory).limits({ maxBatchEvents: 100 }).build();
  await h.start();
  try {
    const raw = (data: string, format: string) => ({
      source: 'agent',
      cluster: '',
      payload: { $case: 'raw' as const, value: { data: Buffer.from(data), format } },
    });
    const refused = await h.processBatch(raw('{}\n'.repeat(50_000), 'ndjson'));
    assert.deepEqual(refused.eventIds, []);
    assert.equal(refused.errors.length, 1);
    assert.equal(refused.errors[0]!.code, 'BATCH_TOO_LARGE');
    assert.match(refused.errors[0]!.message, /more than 100 events.*POLKU_MAX_BATCH_EVENTS=100/);
    const ok = await h.processBatch(raw('{"id":"a"}\n{"id":"b"}', 'ndjson'));
    assert.deepEqual(ok.eventIds, ['a', 'b']);
  } finally {
    await h.drain(1_000);
  }
});

// --- Depth --------------------------------------------------------------------------------------

const nest = (depth: number) => `{"payload":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;

test('an event nested 5,000 levels deep is refused alone, naming the depth limit', () => {
  const lines = ['{"id":"a"}', `{"id":"deep","payload":${'['.repeat(5000)}${']'.repeat(5000)}}`, '{"id":"c"}'];
  const r = ingest(lines.join('\n'), 'ndjson');
  assert.deepEqual(
    r.events.map((e) => e.id),
    ['a', 'c'],
  );
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0]!.message, /^line 2: nesting deeper than 64 \(limit POLKU_MAX_JSON_DEPTH\)/);
  assert.equal(r.problems[0]!.offset, lines[0]!.length + 1);
  // In an array, and as the whole document, the same.
  const arr = ingest(`[{"id":"a"},${lines[1]},{"id":"c"}]`);
  assert.equal(arr.events.length, 2);
  assert.match(arr.problems[0]!.message, /^element 1: nesting deeper than 64/);
  const whole = ingest(lines[1]!);
  assert.equal(whole.events.length, 0);
  assert.match(whole.problems[0]!.message, /^nesting deeper than 64/);
});

test('depth 64 is accepted, 65 refused; the event object itself is level 1', () => {
  assert.equal(ingest(nest(64)).events.length, 1);
  assert.equal(ingest(nest(65)).problems.length, 1);
  assert.equal(ingest(nest(3), '', { maxJsonDepth: 3 }).events.length, 1);
  assert.match(ingest(nest(4), '', { maxJsonDepth: 3 }).problems[0]!.message, /deeper than 3/);
});

test('a depth limit set far beyond the stack refuses a deep value instead of throwing', () => {
  const r = ingest(nest(200_000), 'ndjson', { maxJsonDepth: 1_000_000, maxEventBytes: 4 * MiB });
  assert.equal(r.events.length + r.problems.length, 1);
});

// --- Size ----------------------------------------------------------------------------------------

test('an event larger than maxEventBytes is refused alone, naming the limit; the others are kept', () => {
  const big = `{"payload":"${'x'.repeat(200)}"}`;
  const r = ingest(['{"id":"a"}', big, '{"id":"c"}'].join('\n'), 'ndjson', { maxEventBytes: 100 });
  assert.deepEqual(
    r.events.map((e) => e.id),
    ['a', 'c'],
  );
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]!.message, `line 2: event is ${big.length} bytes, over the limit POLKU_MAX_EVENT_BYTES=100`);
  const arr = ingest(`[{"id":"a"}, ${big}, {"id":"c"}]`, 'json', { maxEventBytes: 100 });
  assert.equal(arr.events.length, 2);
  assert.equal(arr.problems[0]!.message, `element 1: event is ${big.length} bytes, over the limit POLKU_MAX_EVENT_BYTES=100`);
  assert.match(ingest(big, 'json', { maxEventBytes: 100 }).problems[0]!.message, /over the limit POLKU_MAX_EVENT_BYTES=100/);
});

// --- UTF-8 ---------------------------------------------------------------------------------------

test('one line that is not UTF-8 among 500 refuses only itself, with its line number and offset', () => {
  const lines = Array.from({ length: 500 }, (_, i) => Buffer.from(`{"id":"e${i}","payload":"p"}`));
  lines[249] = Buffer.concat([Buffer.from('{"id":"bad","payload":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
  const body = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
  const offset = lines.slice(0, 249).reduce((n, l) => n + l.length + 1, 0);
  for (const format of ['ndjson', '', 'json']) {
    const r = ingest(body, format);
    assert.equal(r.events.length, 499, format);
    assert.equal(r.problems.length, 1, format);
    assert.match(r.problems[0]!.message, /^line 250: not valid UTF-8: invalid UTF-8 continuation byte at byte \d+/, format);
    assert.equal(r.problems[0]!.offset, offset, format);
  }
});

test('overlong encodings, surrogates and code points past U+10FFFF are not UTF-8', () => {
  for (const bad of [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xe2, 0x82]]) {
    const r = ingest(Buffer.concat([Buffer.from('{"id":"'), Buffer.from(bad), Buffer.from('"}')]));
    assert.equal(r.events.length, 0, String(bad));
    assert.match(r.problems[0]!.message, /UTF-8/, String(bad));
  }
  assert.equal(ingest('{"id":"é €😀"}').events[0]!.id, 'é €😀');
});

// --- Faithful ------------------------------------------------------------------------------------

test('numeric timestamps keep every digit up to int64, and are refused past it', () => {
  assert.equal(ingest('{"timestamp_unix_ns":9223372036854775807}').events[0]!.timestampUnixNs, 9223372036854775807n);
  assert.equal(ingest('{"timestamp_unix_ns":-9223372036854775808}').events[0]!.timestampUnixNs, -9223372036854775808n);
  assert.equal(ingest('{"timestampUnixNs":9007199254740993}').events[0]!.timestampUnixNs, 9007199254740993n);
  assert.match(ingest('{"timestamp_unix_ns":9223372036854775808}').problems[0]!.message, /int64/);
  // A timestamp sent as a number stays a number: nothing is rewritten into a string first.
  assert.equal(ingest('{"timestamp":12345678901234567}').events[0]!.timestampUnixNs, 12345678901234567n);
});

test('numbers with leading zeros are not JSON, in a timestamp or anywhere else', () => {
  for (const bad of ['{"timestamp_unix_ns":00000000000000001234}', '{"severity":04}', '{"payload":[01]}', '{"payload":-01}']) {
    const r = ingest(bad);
    assert.equal(r.events.length, 0, bad);
    assert.match(r.problems[0]!.message, /^invalid JSON: a number has a leading zero/, bad);
  }
});

test('numbers in a payload keep their text exactly: nothing rounded past 2^53', () => {
  const payload = '{"big":12345678901234567890123,"ns":1732000000123456789,"f":0.1000000000000000055511151231257827,"e":1E400}';
  const e = ingest(`{"payload":${payload}}`).events[0]!;
  assert.equal(text(e.payload), payload);
  assert.equal(text(ingest('{"payload":9007199254740993}').events[0]!.payload), '9007199254740993');
  const m = ingest('{"metadata":{"n":9007199254740993,"b":true,"x":null,"o":{"k":[1,2]}}}').events[0]!.metadata;
  assert.deepEqual({ ...m }, { n: '9007199254740993', b: 'true', x: 'null', o: '{"k":[1,2]}' });
});

test('"__proto__" is an ordinary key: a metadata entry, kept with its value', () => {
  const e = ingest('{"metadata":{"__proto__":"x","a":"1"},"__proto__":{"id":"no"}}').events[0]!;
  assert.deepEqual(Object.keys(e.metadata), ['__proto__', 'a']);
  assert.equal(Object.getOwnPropertyDescriptor(e.metadata, '__proto__')?.value, 'x');
  assert.equal(Object.getPrototypeOf(e.metadata), Object.prototype);
  assert.equal(e.id, '');
});

test('a repeated member name: the last one wins, as in JSON.parse', () => {
  const e = ingest('{"id":"a","id":"b","metadata":{"k":"1","k":"2"},"payload":"p1","payload":"p2"}').events[0]!;
  assert.equal(e.id, 'b');
  assert.deepEqual({ ...e.metadata }, { k: '2' });
  assert.equal(text(e.payload), 'p2');
});

test('escapes are decoded in names and values, and a payload string keeps its characters', () => {
  const e = ingest('{"\\u0069d":"a\\"b\\u00e9\\ud83d\\ude00","payload":"line\\nnext \\u2028"}').events[0]!;
  assert.equal(e.id, 'a"bé😀');
  assert.equal(text(e.payload), 'line\nnext \u2028');
});

// --- Strict ---------------------------------------------------------------------------------------

test('only RFC 8259 JSON is accepted', () => {
  const bad = [
    '{"id":"a",}',
    "{'id':'a'}",
    '{"id":"a"} // comment',
    '{"n":NaN}',
    '{"n":Infinity}',
    '{"n":+1}',
    '{"n":.5}',
    '{"n":1.}',
    '{"n":1e}',
    '{"n":0x10}',
    '{"id":"tab\there"}',
    '{"id":"\\x41"}',
    '{"id":"\\u12"}',
    '{id:"a"}',
    '{"id":"a"',
    '{"a":[1,2,]}',
    '{"a":tru}',
    '{"a" 1}',
    '[{"id":"a"},]',
    '[{"id":"a"} {"id":"b"}]',
    '[{"id":"a"}]]',
  ];
  for (const body of bad) {
    const r = ingest(body);
    assert.equal(r.events.length, 0, body);
    assert.equal(r.problems.length, 1, body);
    assert.match(r.problems[0]!.message, /^(element \d+: )?invalid JSON: .* at byte \d+$/, body);
  }
});

test('inside an array, an invalid element is refused alone when the array itself is sound', () => {
  const r = ingest('[{"id":"a"}, {"id":tru}, {"id":"c"}]');
  assert.deepEqual(
    r.events.map((e) => e.id),
    ['a', 'c'],
  );
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]!.message, 'element 1: invalid JSON: unexpected "}", wanted "true" at byte 22');
  assert.equal(r.problems[0]!.offset, 13);
});

test('an NDJSON line holding an array is no event, however large, and is not built', () => {
  const r = ingest(`{"id":"a"}\n[${'{},'.repeat(100_000)}{}]\n{"id":"c"}`, 'ndjson');
  assert.equal(r.events.length, 2);
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]!.message, 'line 2: an event must be a JSON object');
});

test('every element is accounted for: events plus problems equal the elements sent', () => {
  const lines = ['{"id":"a"}', 'nope', '{"id":1}', '"str"', '{"id":"e"}', '{"x":[[[[]]]]}', '{"payload":"\\q"}'];
  const r = ingest(lines.join('\n'), 'ndjson', { maxJsonDepth: 4 });
  assert.equal(r.events.length + r.problems.length, lines.length);
  assert.deepEqual(
    r.problems.map((p) => p.message.split(':')[0]),
    ['line 2', 'line 3', 'line 4', 'line 6', 'line 7'],
  );
});

test('metadata is built only until it passes maxMetadataBytes, and what is built is still over it', () => {
  const keys = Array.from({ length: 5_000 }, (_, i) => `"k${i}":"v"`).join(',');
  const e = ingest(`{"metadata":{${keys}}}`, 'json', { maxMetadataBytes: 100 }).events[0]!;
  const size = Object.entries(e.metadata).reduce((n, [k, v]) => n + k.length + v.length, 0);
  assert.ok(size > 100 && size < 120, `built ${size} bytes`);
  // Repeated names are counted once, as the hub counts them: all are read, the last wins.
  const repeated = Array.from({ length: 5_000 }, () => '"k":"v"').join(',');
  assert.deepEqual(
    { ...ingest(`{"metadata":{${repeated},"z":"last"}}`, 'json', { maxMetadataBytes: 100 }).events[0]!.metadata },
    { k: 'v', z: 'last' },
  );
});
