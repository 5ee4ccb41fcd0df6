// `polku serve` with an S3Emitter in its pipeline module (test/fixtures/s3-sink.config.ts), events
// sent over gRPC, objects read back from s3rver with the AWS SDK: every event one line, once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { EventJson } from '../../src/emit/event-json.js';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { killAll, track } from '../helpers/line-process.js';
import { servePolku } from '../helpers/polku-process.js';
import { S3RVER_CREDENTIALS, S3Server } from '../helpers/s3-server.js';

async function until<T>(probe: () => Promise<T | undefined>, what: string, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('polku serve → S3 (s3rver)', () => {
  let s3: S3Server;
  before(async () => {
    s3 = await S3Server.start();
  });
  after(async () => {
    await killAll();
    await s3?.close();
  });

  for (const gzip of [true, false]) {
    test(`3,000 events from three sources, gzip ${gzip ? 'on' : 'off'}: every event one NDJSON line, once, under its source`, async () => {
      const gw = track(
        await servePolku(['--config', 'test/fixtures/s3-sink.config.ts'], {
          POLKU_TEST_S3_ENDPOINT: s3.endpoint,
          POLKU_TEST_S3_BUCKET: s3.bucket,
          POLKU_TEST_S3_KEY: S3RVER_CREDENTIALS.accessKeyId,
          POLKU_TEST_S3_SECRET: S3RVER_CREDENTIALS.secretAccessKey,
          POLKU_TEST_S3_GZIP: String(gzip),
        }),
      );
      const client = protoOnlyClient(gw.grpcPort);
      const stream = new AckStream(client);
      const tag = gzip ? 'gz' : 'plain';
      const acked: string[] = [];
      for (let b = 0; b < 15; b++) {
        const source = `agent-${b % 3}`;
        const events = Array.from({ length: 200 }, (_, i) => ({
          id: `${tag}-${b}-${i}`,
          event_type: 's3.test',
          payload: Buffer.from(`line ${i}`),
        }));
        acked.push(...(await stream.send({ source, events: { events } })).event_ids);
      }
      assert.equal(acked.length, 3000);
      const lines = await until(async () => {
        const objects = (await s3.objects('polku/')).filter((o) => o.text.includes(`"id":"${tag}-`));
        const all = objects.flatMap((o) =>
          o.text
            .trimEnd()
            .split('\n')
            .map((l) => ({ key: o.key, event: JSON.parse(l) as EventJson })),
        );
        return all.length >= 3000 ? all : undefined;
      }, '3,000 lines');
      assert.equal(lines.length, 3000, 'no line twice');
      assert.deepEqual(new Set(lines.map((l) => l.event.id)), new Set(acked));
      for (const { key, event } of lines) {
        assert.ok(key.startsWith(`polku/source=${event.source}/dt=`), `${event.id} under its source: ${key}`);
        assert.ok(key.endsWith(gzip ? '.ndjson.gz' : '.ndjson'), key);
      }
      await stream.end();
      client.close();
      gw.child.kill('SIGTERM');
      assert.equal((await gw.exited).code, 0);
    });
  }
});
