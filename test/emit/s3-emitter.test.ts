// S3Emitter against s3rver (its own process, test/helpers/s3-server.ts), read back with the AWS
// SDK: keys partitioned by source and hour, NDJSON lines, gzip, resends, a missing bucket, no server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { systemClock, systemTimers } from '../../src/clock.js';
import type { EventJson } from '../../src/emit/event-json.js';
import { judge, S3Emitter, type S3EmitterOptions } from '../../src/emit/s3.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { freePort } from '../helpers/postgres-server.js';
import { S3RVER_CREDENTIALS, S3Server } from '../helpers/s3-server.js';

// 2026-12-03T10:59:59.5Z and one second later: two hours.
const T10 = 1_796_295_599_500_000_000n;
const T11 = T10 + 1_000_000_000n;

describe('S3Emitter', () => {
  let s3: S3Server;
  const closers: Array<() => Promise<void>> = [];
  before(async () => {
    s3 = await S3Server.start();
  });
  after(async () => {
    for (const c of closers) await c();
    await s3?.close();
  });

  function emitter(options: Partial<S3EmitterOptions>) {
    const e = new S3Emitter({ bucket: s3.bucket, endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS, ...options });
    const registry = createRegistry();
    e.init({ registry, logger: silentLogger(), clock: systemClock, timers: systemTimers });
    closers.push(() => e.shutdown());
    const metric = async (name: string, labels: Record<string, string>): Promise<number> =>
      (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
        ?.value ?? 0;
    return { e, metric };
  }

  const event = (id: string, source: string, ts: bigint): Event =>
    Event.fromPartial({ id, source, timestampUnixNs: ts, eventType: 't', payload: Buffer.from(`{"id":"${id}"}`) });

  test('one gzipped NDJSON object per source and hour, every event once, keys as documented', async () => {
    const { e, metric } = emitter({ prefix: 'gz/' });
    const batch = [
      event('a1', 'tapio', T10),
      event('b1', 'elava/eu', T10),
      event('a2', 'tapio', T11),
      event('a3', 'tapio', T10),
      event('b2', 'elava/eu', T10),
    ];
    assert.deepEqual(await e.emit(batch), { status: 'success' });
    const objects = await s3.objects('gz/');
    assert.deepEqual(objects.map((o) => o.key.replace(/-[0-9a-f]{12}\./, '-<hash>.')).sort(), [
      'gz/source=elava%2Feu/dt=2026-12-03/hour=10/b1-2-<hash>.ndjson.gz',
      'gz/source=tapio/dt=2026-12-03/hour=10/a1-2-<hash>.ndjson.gz',
      'gz/source=tapio/dt=2026-12-03/hour=11/a2-1-<hash>.ndjson.gz',
    ]);
    const lines = objects.flatMap((o) =>
      o.text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as EventJson),
    );
    assert.deepEqual(lines.map((l) => l.id).sort(), ['a1', 'a2', 'a3', 'b1', 'b2']);
    const tapio10 = objects.find((o) => o.key.includes('hour=10/a1'))!;
    assert.deepEqual(
      tapio10.text
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as EventJson).payload),
      ['{"id":"a1"}', '{"id":"a3"}'],
      'batch order inside an object; the payload as text',
    );
    assert.equal(tapio10.contentEncoding, 'gzip');
    assert.equal(await metric('polku_s3_objects_total', { outcome: 'success' }), 3);
    assert.equal(await metric('polku_s3_events_total', { outcome: 'success' }), 5);
    assert.ok((await metric('polku_s3_bytes_total', {})) > 0);
  });

  test('gzip off: plain .ndjson; the same batch sent again overwrites its own object', async () => {
    const { e } = emitter({ prefix: 'plain', gzip: false });
    const batch = Array.from({ length: 300 }, (_, i) => event(`p${i}`, 'svc', T10));
    assert.deepEqual(await e.emit(batch), { status: 'success' });
    assert.deepEqual(await e.emit(batch), { status: 'success' });
    const objects = await s3.objects('plain/');
    assert.equal(objects.length, 1);
    assert.match(objects[0]!.key, /^plain\/source=svc\/dt=2026-12-03\/hour=10\/p0-300-[0-9a-f]{12}\.ndjson$/);
    assert.equal(objects[0]!.text.trimEnd().split('\n').length, 300);
  });

  test('a missing bucket is retryable and unhealthy; no server is retryable', async () => {
    const { e, metric } = emitter({ bucket: 'no-such-bucket' });
    const missing = await e.emit([event('x', 's', T10)]);
    assert.equal(missing.status, 'retryable');
    assert.ok(missing.status === 'retryable');
    assert.match(missing.error, /S3 404 NoSuchBucket/);
    assert.equal((await e.health()).healthy, false);
    assert.equal(await metric('polku_s3_objects_total', { outcome: 'retryable' }), 1);
    const { e: nowhere } = emitter({ endpoint: `http://127.0.0.1:${await freePort()}`, timeoutMs: 2000 });
    const down = await nowhere.emit([event('y', 's', T10)]);
    assert.equal(down.status, 'retryable');
    assert.ok(down.status === 'retryable');
    assert.match(down.error, /^S3 no answer/);
  });

  test('the SDK error decides: $retryable, 5xx, throttling, 403/404 retry; any other 4xx fails with its code', () => {
    // As the SDK builds them: the exception, then `$retryable` set by its error parser.
    const sdkError = (name: string, status: number, retryable = false) =>
      Object.assign(
        new S3ServiceException({
          name,
          $fault: status >= 500 ? 'server' : 'client',
          $metadata: { httpStatusCode: status },
          message: `${name} happened`,
        }),
        retryable ? { $retryable: { throttling: true } } : {},
      );
    assert.equal(judge(sdkError('SlowDown', 503)).retryable, true);
    assert.equal(judge(sdkError('Whatever', 400, true)).retryable, true);
    assert.equal(judge(sdkError('InternalError', 500)).retryable, true);
    assert.equal(judge(sdkError('AccessDenied', 403)).retryable, true);
    assert.deepEqual(judge(sdkError('EntityTooLarge', 400)), { retryable: false, error: 'S3 400 EntityTooLarge: EntityTooLarge happened' });
    assert.equal(judge(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).retryable, true);
  });

  test('bad options are refused with the option named', () => {
    assert.throws(() => new S3Emitter({ bucket: 'Bad_Bucket' }), /bucket "Bad_Bucket" is not a valid bucket name/);
    assert.throws(() => new S3Emitter({ bucket: 'ok-bucket', endpoint: 'not a url' }), /endpoint "not a url" is not a URL/);
    assert.throws(() => new S3Emitter({ bucket: 'ok-bucket', timeoutMs: -1 }), /timeoutMs must be a positive whole number, got -1/);
  });
});
