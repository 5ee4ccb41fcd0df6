import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../../src/buffer/durable/record-codec.js';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';
import { freePort, startReceiver } from '../helpers/receiver-process.js';

/*
 * Damage in the middle of a real gateway's log: kill -9, damage the segment file, restart. Every
 * event outside the damaged records is delivered; the lost ones are counted exactly, in the log
 * line, the metrics and `polku validate`; the damaged segment is kept aside.
 */

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const received = (sink: string): string[] =>
  existsSync(sink)
    ? readFileSync(sink, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ')[1]!)
    : [];

async function until(condition: () => boolean | Promise<boolean>, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** File offsets of the records of a version-2 segment, walked by their length words. */
function recordOffsets(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let at = SEGMENT_HEADER_BYTES; at + HEADER_BYTES <= bytes.length; at += HEADER_BYTES + bytes.readUInt32LE(at + 4)) out.push(at);
  return out;
}

describe('a damaged log under a real gateway process', () => {
  test('kill -9, damage two stretches of the segment, restart: every other event is delivered, the lost ones counted exactly', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-damaged-'));
    const sink = join(dir, 'received.txt');
    const receiverPort = await freePort();
    const env = {
      POLKU_DURABLE: 'true',
      POLKU_DATA_DIR: dir,
      POLKU_TEST_RECEIVER: `http://127.0.0.1:${receiverPort}/events`,
    };
    const args = ['--config', 'test/fixtures/durable-webhook.config.ts'];
    // The receiver is down: every event stays in the log.
    const first = await servePolku(args, env);
    children.push(first.child);
    const client = protoOnlyClient(first.grpcPort);
    const stream = new AckStream(client);
    stream.status.catch(() => undefined);
    const acked: string[] = [];
    for (let b = 0; b < 10; b++) {
      const ack = await stream.send({
        source: 'd',
        events: { events: Array.from({ length: 20 }, (_, i) => ({ id: `d${b}-${i}`, event_type: 't', payload: Buffer.alloc(150, 7) })) },
      });
      acked.push(...ack.event_ids);
    }
    assert.equal(acked.length, 200);
    first.child.kill('SIGKILL');
    await first.exited;
    client.close();

    const [name] = readdirSync(join(dir, 'events')).filter((f) => f.endsWith('.log'));
    const segment = join(dir, 'events', name!);
    const bytes = readFileSync(segment);
    const offsets = recordOffsets(bytes);
    assert.equal(offsets.length, 200);
    // Seq k is acked[k - 1]: one stream, batches sent one after the other.
    bytes[offsets[49]! + 5] = bytes[offsets[49]! + 5]! ^ 0x01; // seq 50's length word
    bytes.fill(0, offsets[119]! + 40, offsets[122]! + 10); // seq 120's payload to seq 123's header
    writeFileSync(segment, bytes);
    const lost = new Set([50, 120, 121, 122, 123].map((seq) => acked[seq - 1]!));

    const validate = runPolku(['validate', ...args], env);
    children.push(validate.child);
    assert.equal((await validate.exited).code, 1);
    const report = validate.stderr.join('\n');
    t.diagnostic(report);
    assert.match(report, /POLKU_ERR_LOG_DAMAGED/);
    assert.match(report, /events\s+1 segment\(s\), 195 records, 1 corrupt/);
    assert.match(report, /lost 5 events, \d+ bytes, 2 damaged stretch\(es\) skipped/);
    assert.match(report, new RegExp(`segment events/${name}: lost 5 events`));

    await startReceiver(receiverPort, sink, children);
    const second = await servePolku(args, env);
    children.push(second.child);
    const line = JSON.parse(await second.line(/event log recovered with damage skipped/)) as {
      msg: string;
      lostEvents: number;
      skippedRegions: number;
      damagedCopies: string[];
    };
    assert.match(line.msg, /5 events and \d+ bytes lost in 2 damaged stretch\(es\)/);
    assert.deepEqual([line.lostEvents, line.skippedRegions], [5, 2]);
    const expected = acked.filter((id) => !lost.has(id));
    await until(() => received(sink).length >= expected.length, 'delivery of every event outside the damage');
    assert.deepEqual(received(sink), expected, 'every intact event, in order, and none of the damaged ones');
    const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${second.metricsPort}/metrics`)).text();
    const text = await metrics();
    assert.match(text, /^polku_durable_lost_events_total 5$/m);
    assert.match(text, /^polku_durable_lost_bytes_total \d+$/m);
    assert.match(line.damagedCopies[0]!, /kept as .*damaged\/events\//);
    assert.equal(readdirSync(join(dir, 'damaged', 'events')).length, 1);
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);
  });
});
