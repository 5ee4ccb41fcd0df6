import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ExportLogsServiceRequest } from '../../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { AnyValue } from '../../src/gen/opentelemetry/proto/common/v1/common.js';
import type { LogRecord } from '../../src/gen/opentelemetry/proto/logs/v1/logs.js';
import { eventsOfRequest, idProblem, recordCount } from '../../src/receive/otlp/log-records.js';
import { decodeExportRequest, type OtlpIntake } from '../../src/receive/otlp/otlp-intake.js';
import { OtlpBodyError, requestOfJson } from '../../src/receive/otlp/otlp-json.js';
import { fuzzRuns } from './runs.js';

/** What decodeExportRequest needs of the intake: its size limit and how to say "unreadable". */
const intake = {
  maxMessageBytes: 64 * 1024,
  decoded: (request: ExportLogsServiceRequest) => ({ kind: 'request' as const, request }),
  unreadable: (code: string, message: string) => ({ kind: 'unreadable' as const, code, message }),
} as unknown as OtlpIntake;

const MAPPING = { eventTypeAttribute: 'event.name', idAttribute: 'log.record.uid', maxMetadataBytes: 512 };

const anyValue: fc.Arbitrary<AnyValue> = fc.letrec<{ v: AnyValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.string().map((value) => ({ value: { $case: 'stringValue' as const, value } })),
    fc.boolean().map((value) => ({ value: { $case: 'boolValue' as const, value } })),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((value) => ({ value: { $case: 'intValue' as const, value } })),
    fc.double().map((value) => ({ value: { $case: 'doubleValue' as const, value } })),
    fc.uint8Array({ maxLength: 8 }).map((value) => ({ value: { $case: 'bytesValue' as const, value } })),
    fc.array(tie('v'), { maxLength: 3 }).map((values) => ({ value: { $case: 'arrayValue' as const, value: { values } } })),
    fc
      .array(fc.record({ key: fc.string({ maxLength: 8 }), value: tie('v') }), { maxLength: 3 })
      .map((values) => ({ value: { $case: 'kvlistValue' as const, value: { values } } })),
    fc.constant({ value: undefined }),
  ),
})).v;

const keyValues = fc.array(fc.record({ key: fc.string({ maxLength: 12 }), value: anyValue }), { maxLength: 4 });

const logRecord: fc.Arbitrary<LogRecord> = fc.record({
  timeUnixNano: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  observedTimeUnixNano: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  severityNumber: fc.integer({ min: 0, max: 30 }),
  severityText: fc.string({ maxLength: 8 }),
  body: fc.option(anyValue, { nil: undefined }),
  attributes: keyValues,
  droppedAttributesCount: fc.nat(),
  flags: fc.nat(),
  traceId: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ maxLength: 20 })),
  spanId: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 8, maxLength: 8 })),
  eventName: fc.oneof(fc.constant(''), fc.string({ maxLength: 6 })),
});

const request: fc.Arbitrary<ExportLogsServiceRequest> = fc.record({
  resourceLogs: fc.array(
    fc.record({
      resource: fc.option(
        keyValues.map((attributes) => ({ attributes, droppedAttributesCount: 0, entityRefs: [] })),
        { nil: undefined },
      ),
      scopeLogs: fc.array(
        fc.record({
          scope: fc.option(
            fc.record({
              name: fc.string({ maxLength: 6 }),
              version: fc.string({ maxLength: 6 }),
              attributes: fc.constant([]),
              droppedAttributesCount: fc.constant(0),
            }),
            { nil: undefined },
          ),
          logRecords: fc.array(logRecord, { maxLength: 4 }),
          schemaUrl: fc.constant(''),
        }),
        { maxLength: 3 },
      ),
      schemaUrl: fc.constant(''),
    }),
    { maxLength: 3 },
  ),
});

test('protobuf: any request decodes to itself, maps to one event per record, with metadata bounded', () => {
  fc.assert(
    fc.property(request, (req) => {
      const bytes = ExportLogsServiceRequest.encode(req).finish();
      if (bytes.length > intake.maxMessageBytes) return;
      const decoded = decodeExportRequest(intake, bytes);
      assert.equal(decoded.kind, 'request');
      if (decoded.kind !== 'request') return;
      if (idProblem(decoded.request) !== undefined) return;
      const events = eventsOfRequest(decoded.request, MAPPING);
      assert.equal(events.length, recordCount(req));
      for (const e of events) {
        let bytesIn = 0;
        let largest = 0;
        for (const k in e.metadata) {
          bytesIn += k.length + e.metadata[k]!.length;
          largest = Math.max(largest, k.length + e.metadata[k]!.length);
        }
        // Copying stops once past the limit: at most one attribute, and the fixed keys, beyond it.
        assert.ok(bytesIn <= MAPPING.maxMetadataBytes + largest * 6 + 200, `metadata ${bytesIn} bytes`);
        if (e.metadata['polku.payload.format'] === 'json') JSON.parse(Buffer.from(e.payload).toString('utf8'));
      }
    }),
    { numRuns: fuzzRuns() },
  );
});

test('protobuf: arbitrary bytes never throw; they decode or are refused INVALID_BATCH', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      const decoded = decodeExportRequest(intake, bytes);
      if (decoded.kind === 'unreadable') assert.equal(decoded.code, 'INVALID_BATCH');
      else eventsOfRequest(decoded.request, MAPPING);
    }),
    { numRuns: fuzzRuns() },
  );
});

test('OTLP/JSON: any JSON value or text either reads as a request or throws OtlpBodyError, never anything else', () => {
  const shaped = fc.record({
    resourceLogs: fc.array(
      fc.record({
        scopeLogs: fc.array(
          fc.record({
            logRecords: fc.array(
              fc.dictionary(fc.constantFrom('body', 'traceId', 'timeUnixNano', 'severityNumber', 'attributes'), fc.jsonValue()),
              { maxLength: 3 },
            ),
          }),
          {
            maxLength: 2,
          },
        ),
      }),
      { maxLength: 2 },
    ),
  });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.jsonValue().map((v) => JSON.stringify(v)),
        shaped.map((v) => JSON.stringify(v)),
        fc.string(),
      ),
      (text) => {
        try {
          const req = requestOfJson(Buffer.from(text, 'utf8'));
          eventsOfRequest(req, MAPPING);
        } catch (err) {
          assert.ok(err instanceof OtlpBodyError, `threw ${String(err)}`);
        }
      },
    ),
    { numRuns: fuzzRuns() },
  );
});
