import { randomBytes } from 'node:crypto';
import { ExportLogsServiceRequest } from '../../src/gen/opentelemetry/proto/collector/logs/v1/logs_service.js';
import type { LogRecord } from '../../src/gen/opentelemetry/proto/logs/v1/logs.js';

const str = (value: string) => ({ value: { $case: 'stringValue' as const, value } });

function record(body: string): LogRecord {
  return {
    timeUnixNano: 1_700_000_000_000_000_000n,
    observedTimeUnixNano: 0n,
    severityNumber: 9,
    severityText: 'INFO',
    body: str(body),
    attributes: [{ key: 'event.name', value: str('bench.synthetic') }],
    droppedAttributesCount: 0,
    flags: 1,
    traceId: randomBytes(16),
    spanId: randomBytes(8),
    eventName: '',
  };
}

/**
 * The OTLP bench's Export request, encoded once: `batch` log records of ~`recordBytes` each as
 * encoded (a string body, three resource attributes, scope, `event.name`, trace and span ids), as
 * an SDK's BatchLogRecordProcessor sends them. Every OTLP load generator (bench/otlp-loadgen.ts's
 * clients, bench/otlp_loadgen_grpcio.py through a file) sends these bytes.
 */
export function benchExportRequest(batch: number, recordBytes: number): Buffer {
  const overhead = ExportLogsServiceRequest.encode({
    resourceLogs: [{ resource: undefined, scopeLogs: [{ scope: undefined, logRecords: [record('')], schemaUrl: '' }], schemaUrl: '' }],
  }).finish().length;
  const body = randomBytes(Math.max(1, Math.floor((recordBytes - overhead) / 2))).toString('hex');
  return Buffer.from(
    ExportLogsServiceRequest.encode({
      resourceLogs: [
        {
          resource: {
            attributes: [
              { key: 'service.name', value: str('bench-otlp') },
              { key: 'k8s.namespace.name', value: str('default') },
              { key: 'k8s.pod.name', value: str('bench-loadgen-7d9f8c6b5-x2k4q') },
            ],
            droppedAttributesCount: 0,
            entityRefs: [],
          },
          scopeLogs: [
            {
              scope: { name: 'bench', version: '1', attributes: [], droppedAttributesCount: 0 },
              logRecords: Array.from({ length: batch }, () => record(body)),
              schemaUrl: '',
            },
          ],
          schemaUrl: '',
        },
      ],
    }).finish(),
  );
}
