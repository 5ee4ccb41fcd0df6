import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AckStream, events, protoOnlyClient, scrape, sample } from '../helpers/gateway-harness.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';

describe('polku serve as a process', () => {
  test('a bad environment value stops start-up with a message naming the variable', async () => {
    const p = runPolku(['serve'], { POLKU_BATCH_SIZE: 'lots', POLKU_OVERFLOW_POLICY: 'maybe' });
    const { code } = await p.exited;
    assert.equal(code, 1);
    const err = p.stderr.join('\n');
    assert.match(err, /POLKU_ERR_ENV_INVALID/);
    assert.match(err, /POLKU_BATCH_SIZE="lots": must be a whole number/);
    assert.match(err, /POLKU_OVERFLOW_POLICY="maybe": must be one of reject, drop_oldest, block/);
  });

  test('SIGTERM: NOT_SERVING, intake stops, the buffer drains to the emitter, exit 0, nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-drain-'));
    const sinkFile = join(dir, 'sink.txt');
    const gw = await servePolku(['--config', 'test/fixtures/held-file-sink.config.ts'], {
      POLKU_TEST_SINK: sinkFile,
      POLKU_SHUTDOWN_TIMEOUT_MS: '20000',
    });
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const accepted: string[] = [];
    for (let b = 0; b < 20; b++) {
      const ack = await stream.send({ source: 'drain', events: { events: events(100, (i) => ({ id: `d-${b}-${i}` })) } });
      accepted.push(...ack.event_ids);
    }
    assert.equal(accepted.length, 2000);
    // The emitter holds everything until SIGTERM: all 2000 are in the buffer now.
    assert.equal(sample(await scrape(gw.metricsPort), 'polku_buffer_events'), 2000);
    gw.child.kill('SIGTERM');
    const status = await stream.status;
    assert.equal(status.code, 14, 'the open stream is ended with UNAVAILABLE so the agent reconnects');
    client.close();
    const { code } = await gw.exited;
    assert.equal(code, 0);
    const delivered = readFileSync(sinkFile, 'utf8').trim().split('\n');
    assert.equal(delivered.length, 2000);
    assert.deepEqual(delivered, accepted, 'every accepted event delivered once, in order');
    assert.ok(gw.stderr.some((l) => l.includes('"buffer drained"')));
  });

  test('SIGTERM with an emitter that never answers: exit 0 at the deadline, undelivered events logged with their count', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-deadline-'));
    const gw = await servePolku(['--config', 'test/fixtures/held-file-sink.config.ts'], {
      POLKU_TEST_SINK: join(dir, 'sink.txt'),
      POLKU_TEST_HOLD: 'forever',
      POLKU_SHUTDOWN_TIMEOUT_MS: '300',
    });
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const ack = await stream.send({ source: 'stuck', events: { events: events(42) } });
    assert.equal(ack.event_ids.length, 42);
    gw.child.kill('SIGTERM');
    await stream.status;
    client.close();
    const { code } = await gw.exited;
    assert.equal(code, 0);
    const line = gw.stderr.find((l) => l.includes('undelivered'));
    assert.ok(line, 'a log line reports undelivered events');
    assert.equal(JSON.parse(line).undelivered, 42);
    assert.equal(existsSync(join(dir, 'sink.txt')), false);
  });

  test('the quick start: bin/polku.js serves the embedded default and `polku send` gets an Ack', async () => {
    const gw = await servePolku([], {}, true);
    try {
      const sent = runPolku(['send', '--addr', `127.0.0.1:${gw.grpcPort}`, '--type', 'hello.world', '--payload', 'hi'], {}, true);
      const { code } = await sent.exited;
      assert.equal(code, 0, sent.stderr.join('\n'));
      const ack = JSON.parse(sent.stdout.join('\n'));
      assert.equal(ack.eventIds.length, 1);
      assert.deepEqual(ack.errors, []);
      const printed = JSON.parse(await gw.line(/"event_type":"hello.world"/));
      assert.equal(printed.id, ack.eventIds[0]);
      assert.equal(printed.payload, 'hi');

      // A file of NDJSON events: the good lines are accepted, the bad one is reported, exit 1.
      const dir = mkdtempSync(join(tmpdir(), 'polku-send-'));
      const file = join(dir, 'events.ndjson');
      writeFileSync(file, '{"id":"f1","event_type":"from.file"}\nnot json\n{"id":"f2","event_type":"from.file"}\n');
      const fromFile = runPolku(['send', '--addr', `127.0.0.1:${gw.grpcPort}`, '--file', file], {}, true);
      assert.equal((await fromFile.exited).code, 1);
      const fileAck = JSON.parse(fromFile.stdout.join('\n'));
      assert.deepEqual(fileAck.eventIds, ['f1', 'f2']);
      assert.equal(fileAck.errors[0].code, 'PARSE_ERROR');
      assert.match(fileAck.errors[0].message, /line 2/);
    } finally {
      gw.child.kill('SIGTERM');
      assert.equal((await gw.exited).code, 0);
    }
  });
});

describe('polku validate', () => {
  test('a valid pipeline module is summarised', async () => {
    const p = runPolku(['validate', '--config', 'test/fixtures/filtering.config.ts']);
    assert.equal((await p.exited).code, 0, p.stderr.join('\n'));
    const out = p.stdout.join('\n');
    assert.match(out, /pipeline OK/);
    assert.match(out, /middleware: users-only, tag-env/);
    assert.match(out, /buffer: +500 events/);
  });

  test('a pipeline without emitters is refused with a coded error', async () => {
    const p = runPolku(['validate', '--config', 'test/fixtures/no-emitter.config.ts']);
    assert.equal((await p.exited).code, 1);
    assert.match(p.stderr.join('\n'), /POLKU_ERR_PIPELINE_INVALID: the pipeline has no emitter/);
  });

  test('a missing module is named', async () => {
    const p = runPolku(['validate', '--config', 'nope/polku.config.ts']);
    assert.equal((await p.exited).code, 1);
    assert.match(p.stderr.join('\n'), /POLKU_ERR_CONFIG_NOT_FOUND: pipeline module .*nope\/polku.config.ts does not exist/);
  });
});
