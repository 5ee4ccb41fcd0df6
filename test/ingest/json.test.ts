import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonIngestor } from '../../src/ingest/json.js';
import type { IngestResult } from '../../src/ingest/ingestor.js';
import { Outcome, Severity } from '../../src/gen/polku/v1/event.js';

const ingestor = new JsonIngestor();

function ingest(data: string | Uint8Array, format = ''): IngestResult {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const result = ingestor.ingest({ source: 'agent-1', cluster: 'c1', format }, bytes);
  assert.ok(!(result instanceof Promise), 'the JSON ingestor answers synchronously');
  return result;
}

/** Ingests one object and returns its single event, failing on any problem. */
function one(object: Record<string, unknown>) {
  const { events, problems } = ingest(JSON.stringify(object));
  assert.deepEqual(problems, []);
  assert.equal(events.length, 1);
  return events[0]!;
}

/** Ingests one object and returns its single problem message, failing if an event came out. */
function problemOf(object: Record<string, unknown>): string {
  const { events, problems } = ingest(JSON.stringify(object));
  assert.equal(events.length, 0);
  assert.equal(problems.length, 1);
  return problems[0]!.message;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

test('one JSON object becomes one event with its fields', () => {
  const e = one({ id: 'e1', source: 'web', event_type: 'user.signup', route_to: ['sink'] });
  assert.equal(e.id, 'e1');
  assert.equal(e.source, 'web');
  assert.equal(e.eventType, 'user.signup');
  assert.deepEqual(e.routeTo, ['sink']);
  assert.equal(e.timestampUnixNs, 0n);
  assert.equal(e.payload.length, 0);
});

test('camelCase field names and "type" are accepted too', () => {
  const e = one({ eventType: 'a.b', routeTo: ['x'], timestampUnixNs: 5 });
  assert.equal(e.eventType, 'a.b');
  assert.deepEqual(e.routeTo, ['x']);
  assert.equal(e.timestampUnixNs, 5n);
  assert.equal(one({ type: 'c.d' }).eventType, 'c.d');
});

test('an array of objects becomes one event per element, and a bad element does not cost the others', () => {
  const { events, problems } = ingest(JSON.stringify([{ id: 'a' }, { id: 7 }, { id: 'c' }]));
  assert.deepEqual(
    events.map((e) => e.id),
    ['a', 'c'],
  );
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /^element 1: "id" must be a string/);
});

test('NDJSON keeps the good lines and reports the bad line at its byte offset', () => {
  const lines = ['{"id":"a","source":"é-ünïcode"}', '{not json', '{"id":"c"}'];
  const { events, problems } = ingest(lines.join('\n') + '\n');
  assert.deepEqual(
    events.map((e) => e.id),
    ['a', 'c'],
  );
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /^line 2: invalid JSON/);
  assert.equal(problems[0]!.offset, Buffer.byteLength(lines[0]!) + 1);
});

test('NDJSON offsets count the bytes the agent sent, even after a line with a bare big timestamp', () => {
  const lines = ['{"id":"a","timestamp_unix_ns":1732000000123456789}', '{"id": oops}', '{"id":"c"}'];
  const { events, problems } = ingest(lines.join('\n'));
  assert.deepEqual(
    events.map((e) => e.id),
    ['a', 'c'],
  );
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.offset, Buffer.byteLength(lines[0]!) + 1);
});

test('NDJSON offsets count a leading UTF-8 byte order mark, which is otherwise ignored', () => {
  const body = '{"id":"a"}\n{bad\n';
  const { events, problems } = ingest(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]));
  assert.deepEqual(
    events.map((e) => e.id),
    ['a'],
  );
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.offset, 3 + body.indexOf('{bad'));
});

test('NDJSON with CRLF line endings and blank lines parses every object', () => {
  const { events, problems } = ingest('{"id":"a"}\r\n\r\n{"id":"b"}\r\n');
  assert.deepEqual(problems, []);
  assert.deepEqual(
    events.map((e) => e.id),
    ['a', 'b'],
  );
});

test('the ndjson format hint reads line by line, whatever the case of the hint', () => {
  // As one document this is a valid array; as NDJSON its one line is not an object.
  for (const hint of ['ndjson', 'NDJSON', 'jsonl', 'application/x-ndjson']) {
    const { events, problems } = ingest('[{"id":"a"}]', hint);
    assert.equal(events.length, 0, hint);
    assert.equal(problems.length, 1, hint);
    assert.match(problems[0]!.message, /^line 1: an event must be a JSON object/, hint);
    assert.equal(problems[0]!.offset, 0, hint);
  }
  const { events } = ingest('{"id":"a"}\n{"id":"b"}', 'ndjson');
  assert.deepEqual(
    events.map((e) => e.id),
    ['a', 'b'],
  );
});

test('a text payload is carried as its UTF-8 bytes', () => {
  assert.equal(text(one({ payload: 'hello, wörld' }).payload), 'hello, wörld');
});

test('a JSON object payload is carried as its JSON text', () => {
  const e = one({ payload: { user: 42, tags: ['a', true], nested: { x: null } } });
  assert.equal(text(e.payload), '{"user":42,"tags":["a",true],"nested":{"x":null}}');
});

test('payload_base64 is decoded to the raw bytes, base64url included', () => {
  assert.deepEqual([...one({ payload_base64: 'AAH/' }).payload], [0, 1, 255]);
  assert.deepEqual([...one({ payloadBase64: 'AAH_' }).payload], [0, 1, 255]);
  assert.equal(text(one({ payload_base64: 'aGVsbG8=' }).payload), 'hello');
});

test('payload_base64 that is not base64 is a problem', () => {
  assert.match(problemOf({ payload_base64: 'not base64!' }), /payload_base64/);
});

test('severity and outcome are read by short name, prefixed name and in lowercase', () => {
  assert.equal(one({ severity: 'ERROR' }).severity, Severity.SEVERITY_ERROR);
  assert.equal(one({ severity: 'SEVERITY_ERROR' }).severity, Severity.SEVERITY_ERROR);
  assert.equal(one({ severity: 'warning' }).severity, Severity.SEVERITY_WARNING);
  assert.equal(one({ severity: 'severity_critical' }).severity, Severity.SEVERITY_CRITICAL);
  assert.equal(one({ outcome: 'FAILURE' }).outcome, Outcome.OUTCOME_FAILURE);
  assert.equal(one({ outcome: 'OUTCOME_TIMEOUT' }).outcome, Outcome.OUTCOME_TIMEOUT);
  assert.equal(one({ outcome: 'success' }).outcome, Outcome.OUTCOME_SUCCESS);
});

test('severity and outcome are read by number', () => {
  assert.equal(one({ severity: 4 }).severity, Severity.SEVERITY_ERROR);
  assert.equal(one({ outcome: 3 }).outcome, Outcome.OUTCOME_TIMEOUT);
  assert.equal(one({ severity: 0, outcome: 0 }).severity, Severity.SEVERITY_UNSPECIFIED);
});

test('unknown severity and outcome names or numbers are problems', () => {
  assert.match(problemOf({ severity: 'LOUD' }), /unknown severity "LOUD"/);
  assert.match(problemOf({ severity: 'UNRECOGNIZED' }), /unknown severity/);
  assert.match(problemOf({ severity: 9 }), /unknown severity 9/);
  assert.match(problemOf({ severity: -1 }), /unknown severity -1/);
  assert.match(problemOf({ severity: 2.5 }), /unknown severity 2\.5/);
  assert.match(problemOf({ outcome: 'MAYBE' }), /unknown outcome "MAYBE"/);
  assert.match(problemOf({ outcome: 5 }), /unknown outcome 5/);
});

test('a timestamp_unix_ns sent as a bare JSON number keeps full nanosecond precision', () => {
  const { events, problems } = ingest('{"id":"a","timestamp_unix_ns": 1732000000123456789}');
  assert.deepEqual(problems, []);
  assert.equal(events[0]!.timestampUnixNs, 1732000000123456789n);
});

test('a timestamp_unix_ns sent as a digit string keeps full precision', () => {
  assert.equal(one({ timestamp_unix_ns: '1732000000123456789' }).timestampUnixNs, 1732000000123456789n);
  assert.equal(one({ timestamp_unix_ns: '-5' }).timestampUnixNs, -5n);
});

test('a timestamp outside int64 nanoseconds is a problem', () => {
  assert.match(problemOf({ timestamp_unix_ns: '9223372036854775808' }), /int64/);
});

test('a fractional big timestamp spoils only its own element of an array', () => {
  const { events, problems } = ingest('[{"id":"a"},{"id":"b","timestamp_unix_ns":1732000000123456789.5}]');
  assert.deepEqual(
    events.map((e) => e.id),
    ['a'],
  );
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /^element 1: /);
});

test('an RFC 3339 timestamp with nanoseconds converts to exact nanoseconds', () => {
  const expected = BigInt(Date.UTC(2024, 10, 19, 7, 6, 40)) * 1_000_000n + 123_456_789n;
  assert.equal(one({ timestamp: '2024-11-19T07:06:40.123456789Z' }).timestampUnixNs, expected);
});

test('an RFC 3339 timestamp with a short fraction and an offset converts exactly', () => {
  // 09:06:40.5+02:00 is 07:06:40.5Z.
  const expected = BigInt(Date.UTC(2024, 10, 19, 7, 6, 40)) * 1_000_000n + 500_000_000n;
  assert.equal(one({ timestamp: '2024-11-19T09:06:40.5+02:00' }).timestampUnixNs, expected);
});

test('a timestamp that is neither nanoseconds nor RFC 3339 is a problem', () => {
  assert.match(problemOf({ timestamp: 'yesterday' }), /neither nanoseconds nor RFC 3339/);
  assert.match(problemOf({ timestamp: true }), /timestamp must be/);
});

test('bytes that are not valid UTF-8 give a problem and no events', () => {
  const { events, problems } = ingest(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
  assert.deepEqual(events, []);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /UTF-8/);
});

test('a single line that is not JSON gives one problem at offset 0', () => {
  const { events, problems } = ingest('this is not json');
  assert.deepEqual(events, []);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /^invalid JSON/);
  assert.equal(problems[0]!.offset, 0);
});

test('a JSON value that is not an object is a problem', () => {
  const { events, problems } = ingest('"just a string"');
  assert.deepEqual(events, []);
  assert.match(problems[0]!.message, /an event must be a JSON object/);
});

test('metadata values that are not strings become their JSON text', () => {
  const e = one({ metadata: { count: 42, ok: true, ratio: 0.5, name: 'n', none: null } });
  assert.deepEqual(e.metadata, { count: '42', ok: 'true', ratio: '0.5', name: 'n', none: 'null' });
});

test('metadata that is not an object is a problem', () => {
  assert.match(problemOf({ metadata: ['a'] }), /"metadata" must be an object/);
});

test('route_to that is not an array of strings is a problem', () => {
  assert.match(problemOf({ route_to: 'sink' }), /"route_to" must be an array of strings/);
  assert.match(problemOf({ route_to: ['sink', 3] }), /"route_to" must be an array of strings/);
});

test('string fields of the wrong type are problems', () => {
  assert.match(problemOf({ source: 5 }), /"source" must be a string/);
  assert.match(problemOf({ event_type: {} }), /"event_type" must be a string/);
});
