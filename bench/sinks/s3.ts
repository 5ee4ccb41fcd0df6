/**
 * S3Emitter under `npm run bench:sinks`, against s3rver (its own process, files in a temp folder).
 * The ceiling beside it: the AWS SDK alone in this process, PutObject of the same gzipped NDJSON
 * object (500 events of the load generator's shape: ~300 random payload bytes, base64 in the JSON) back
 * to back: the same bytes on the wire as the emitter's objects. s3rver is a test server
 * (Koa, a file per object): the figure says what the emitter costs next to the SDK, not what S3
 * or MinIO would take. No target in the issue.
 */
import { randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { gzipSync } from 'node:zlib';
import { eventToJson } from '../../src/emit/event-json.js';
import { Event, Severity } from '../../src/gen/polku/v1/event.js';
import { S3Server } from '../../test/helpers/s3-server.js';
import { gatewayDelivery, OFFERED_LOAD, rawLoop, type SinkBenchOptions, type SinkFigures } from './common.js';

export async function benchS3(o: SinkBenchOptions): Promise<SinkFigures> {
  const s3 = await S3Server.start('bench');
  try {
    const events = Array.from({ length: 500 }, (_, i) =>
      Event.fromPartial({
        id: `raw-${i}`,
        timestampUnixNs: 1_764_560_000_000_000_000n + BigInt(i),
        source: 'bench-loadgen',
        eventType: 'bench.synthetic',
        severity: Severity.SEVERITY_INFO,
        metadata: { cluster: 'bench', namespace: 'default', pod: 'bench-loadgen-7d9f8c6b5-x2k4q' },
        payload: randomBytes(300),
      }),
    );
    const body = gzipSync(events.map((e) => JSON.stringify(eventToJson(e)) + '\n').join(''));
    const raw = await rawLoop(o.durationMs, o.warmupMs, async (i) => {
      await s3.client.send(new PutObjectCommand({ Bucket: 'bench', Key: `raw/${i}.ndjson.gz`, Body: body, ContentEncoding: 'gzip' }));
      return events.length;
    });
    const run = await gatewayDelivery(
      o,
      'bench/sinks/s3.config.ts',
      { POLKU_BENCH_S3_ENDPOINT: s3.endpoint },
      {
        name: 'polku_s3_events_total',
        labels: { outcome: 'success' },
      },
      raw * OFFERED_LOAD,
    );
    return {
      sink: 's3',
      gatewayPerSec: run.deliveredPerSec,
      acceptedPerSec: run.acceptedPerSec,
      rawPerSec: raw,
      rawLabel: 'AWS SDK alone, PutObject of a 500-event gzipped object, one at a time',
      gatewayCpuUsPerEvent: run.cpuUsPerEvent,
      target: 0,
      notes: [`s3rver is a test server; ${run.dropped} events dropped by the gateway`],
    };
  } finally {
    await s3.close();
  }
}
