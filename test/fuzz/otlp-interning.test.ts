import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ExportLogsServiceRequest } from '../../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { LogRecord } from '../../src/gen/opentelemetry/proto/logs/v1/logs.js';
import { eventsOfRequest } from '../../src/receive/otlp/log-records.js';
import { decodeExportLogs } from '../../src/receive/otlp/export-decoder.js';
import { fuzzRuns } from './runs.js';

// The decoder finds short strings it decoded before by their bytes (wire-strings.ts, StringTable).
// These hold it to the reference mapping when the tables are warm, full of near neighbours and
// evicted by collisions, and show a cached string never lets invalid UTF-8 of the same length in.

const MAPPING = { eventTypeAttribute: 'event.name', idAttribute: 'log.record.uid', maxMetadataBytes: 1 << 20 };
const LIMITS = { maxBatchEvents: 100_000, maxJsonDepth: 64 };
const str = (value: string) => ({ value: { $case: 'stringValue' as const, value } });

function record(attributes: Array<[string, string]>, severityText = 'INFO', eventName = ''): LogRecord {
  return {
    timeUnixNano: 1n,
    observedTimeUnixNano: 0n,
    severityNumber: 9,
    severityText,
    body: str('b'),
    attributes: attributes.map(([key, value]) => ({ key, value: str(value) })),
    droppedAttributesCount: 0,
    flags: 0,
    traceId: new Uint8Array(0),
    spanId: new Uint8Array(0),
    eventName,
  };
}

function requestOf(records: LogRecord[]): ExportLogsServiceRequest {
  return {
    resourceLogs: [{ resource: undefined, scopeLogs: [{ scope: undefined, logRecords: records, schemaUrl: '' }], schemaUrl: '' }],
  };
}

function decode(req: ExportLogsServiceRequest) {
  return decodeExportLogs(ExportLogsServiceRequest.encode(req).finish(), MAPPING, LIMITS);
}

test('decoded again and again from a small pool of near-identical strings, every record maps as the reference maps it', () => {
  // Few distinct strings, differing in one character or one byte of a multi-byte one, so most reads hit the table.
  const pool = fc.constantFrom('k', 'K', 'ka', 'kb', 'kä', 'kå', 'kö', 'ÿk', '€', '€€', 'event.name', 'event.namf', 'INFO', 'INFP', '');
  const records = fc.array(
    fc.record({
      attributes: fc.array(fc.tuple(pool, fc.oneof(pool, fc.string({ maxLength: 70 }))), { maxLength: 4 }),
      severityText: pool,
      eventName: pool,
    }),
    { minLength: 1, maxLength: 8 },
  );
  fc.assert(
    fc.property(records, (rs) => {
      const req = requestOf(rs.map((r) => record(r.attributes, r.severityText, r.eventName)));
      const want = eventsOfRequest(req, MAPPING);
      for (let round = 0; round < 2; round++) {
        const got = decode(req);
        assert.equal(got.kind, 'events');
        if (got.kind === 'events') assert.deepEqual(got.events, want);
      }
    }),
    { numRuns: fuzzRuns() },
  );
});

test('5,000 distinct keys and values (every slot evicted many times over): each record keeps its own', () => {
  const records = Array.from({ length: 5_000 }, (_, i) => record([[`key-${i}`, `value-${i}`]], `sev-${i % 700}`));
  const got = decode(requestOf(records));
  assert.equal(got.kind, 'events');
  if (got.kind !== 'events') return;
  assert.equal(got.events.length, 5_000);
  got.events.forEach((e, i) => {
    assert.equal(e.metadata[`otel.attr.key-${i}`], `value-${i}`);
    assert.equal(e.metadata['severity_text'], `sev-${i % 700}`);
  });
});

test('a key whose bytes differ from a cached one only by an invalid byte is refused, not served from the table', () => {
  const valid = ExportLogsServiceRequest.encode(requestOf([record([['keyé', 'v']])])).finish();
  const first = decodeExportLogs(valid, MAPPING, LIMITS);
  assert.equal(first.kind, 'events');
  if (first.kind === 'events') assert.equal(first.events[0]!.metadata['otel.attr.keyé'], 'v');
  // The same request with é (c3 a9) turned into c3 28: same length, not UTF-8.
  const invalid = Buffer.from(valid);
  const at = invalid.indexOf(Buffer.from('keyé'));
  assert.ok(at >= 0);
  invalid[at + 4] = 0x28;
  const refused = decodeExportLogs(invalid, MAPPING, LIMITS);
  assert.deepEqual(refused, {
    kind: 'unreadable',
    code: 'INVALID_BATCH',
    message: 'not an ExportLogsServiceRequest: a string field is not valid UTF-8',
  });
  // And the valid one still decodes from the table afterwards.
  const again = decodeExportLogs(valid, MAPPING, LIMITS);
  assert.equal(again.kind, 'events');
});
