import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { servePolku } from '../helpers/polku-process.js';
import { procStatusMiB } from '../helpers/raw-grpc.js';

const MiB = 1024 * 1024;

describe('JSON amplification against a real gateway at the chart heap (160 MiB)', () => {
  test('a 4 MiB NDJSON body of "{}" lines is refused BATCH_TOO_LARGE while decoding; the stream and process go on', async (t) => {
    const gw = await servePolku([], { NODE_OPTIONS: '--max-old-space-size=160' });
    const client = protoOnlyClient(gw.grpcPort);
    try {
      const pid = gw.child.pid!;
      // Just under the 4 MiB message limit, so the message reaches the ingestor: ~1.4 million lines.
      const body = Buffer.from('{}\n'.repeat(Math.floor((4 * MiB - 1024) / 3)));
      const stream = new AckStream(client);

      const refused = await stream.send({ source: 'attacker', raw: { data: body, format: 'ndjson' } });
      assert.deepEqual(refused.event_ids, []);
      assert.equal(refused.errors.length, 1);
      assert.equal(refused.errors[0]!.code, 'BATCH_TOO_LARGE');
      assert.match(refused.errors[0]!.message, /more than 10000 events in one message \(limit POLKU_MAX_BATCH_EVENTS=10000\)/);

      // The same stream: a normal batch is accepted.
      const ok = await stream.send({
        source: 'agent',
        raw: { data: Buffer.from('{"id":"after-1","event_type":"ok"}\n{"id":"after-2","event_type":"ok"}\n'), format: 'ndjson' },
      });
      assert.deepEqual(ok.event_ids, ['after-1', 'after-2']);
      assert.deepEqual(ok.errors, []);

      assert.equal(gw.child.exitCode, null, 'the gateway is still running');
      const peak = procStatusMiB(pid, 'VmHWM');
      const now = procStatusMiB(pid, 'VmRSS');
      t.diagnostic(`gateway RSS now ${now.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB`);
      assert.ok(peak < 300, `peak RSS ${peak.toFixed(0)} MiB is under 300 MiB`);
      assert.ok(now < 300, `RSS ${now.toFixed(0)} MiB is under 300 MiB`);

      const status = await stream.end();
      assert.equal(status.code, 0);
    } finally {
      client.close();
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  });
});
