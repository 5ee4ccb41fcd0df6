import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { checkDurableDir } from '../../src/buffer/durable/check-log.js';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Runs a CLI command to its end; resolves with its exit code and output. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const p = runPolku(args, env);
  children.push(p.child);
  const { code } = await p.exited;
  return { code, out: p.stdout.join('\n'), err: p.stderr.join('\n') };
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, limitMs = 20_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const durableEnv = (dir: string) => ({ POLKU_DURABLE: 'true', POLKU_DATA_DIR: dir });

describe('polku dlq and polku validate against a durable gateway process', () => {
  test('dead letters are listed, inspected one by one and purged; a missing id is a clear 404', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-dlq-'));
    const gw = await servePolku(['--config', 'test/fixtures/durable-refusing.config.ts'], durableEnv(dir));
    children.push(gw.child);
    const admin = ['--admin', `127.0.0.1:${gw.metricsPort}`];
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const ack = await stream.send({
      source: 'cli-test',
      events: {
        events: [
          { id: 'bad-1', event_type: 't' },
          { id: 'good-1', event_type: 't' },
          { id: 'bad-2', event_type: 't', payload: Buffer.from('{"why":"schema"}') },
        ],
      },
    });
    assert.deepEqual(ack.event_ids, ['bad-1', 'good-1', 'bad-2'], 'all three are accepted: refusal comes later, from the emitter');

    const listed = await until(async () => {
      const r = await cli(['dlq', 'list', ...admin]);
      assert.equal(r.code, 0, r.err);
      const body = JSON.parse(r.out) as { deadLetters: Array<{ id: number; emitter: string; reason: string; event: { id: string } }> };
      return body.deadLetters.length === 2 ? body.deadLetters : undefined;
    }, 'two dead letters');
    assert.deepEqual(
      listed.map((d) => [d.event.id, d.emitter]),
      [
        ['bad-1', 'picky'],
        ['bad-2', 'picky'],
      ],
    );
    assert.match(listed[0]!.reason, /refused bad-1/);

    const inspected = await cli(['dlq', 'inspect', String(listed[1]!.id), ...admin]);
    assert.equal(inspected.code, 0, inspected.err);
    const letter = JSON.parse(inspected.out) as {
      id: number;
      targets: string[];
      attempts: number;
      event: { id: string; payload: unknown };
    };
    assert.equal(letter.id, listed[1]!.id);
    assert.equal(letter.event.id, 'bad-2');
    assert.deepEqual(letter.targets, ['picky']);
    assert.equal(letter.attempts, 1);
    assert.match(JSON.stringify(letter.event.payload), /schema/);

    const missing = await cli(['dlq', 'inspect', '99999', ...admin]);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /no dead letter 99999/);
    const usage = await cli(['dlq', 'inspect', 'abc', ...admin]);
    assert.equal(usage.code, 2, 'a usage mistake exits 2');
    assert.match(usage.err, /polku dlq inspect wants a dead letter's id/);

    const purged = await cli(['dlq', 'purge', ...admin]);
    assert.deepEqual(JSON.parse(purged.out), { purged: 2 });
    const after = await cli(['dlq', 'list', ...admin]);
    assert.deepEqual(JSON.parse(after.out), { deadLetters: [] });
    const gone = await cli(['dlq', 'inspect', String(listed[0]!.id), ...admin]);
    assert.equal(gone.code, 1, 'a purged letter cannot be inspected');

    client.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('polku validate checks the log: OK, a torn tail reported (exit 0), a flipped byte DAMAGED (exit 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-validate-'));
    const gw = await servePolku(['--config', 'test/fixtures/durable-refusing.config.ts'], durableEnv(dir));
    children.push(gw.child);
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    for (let b = 0; b < 4; b++) {
      await stream.send({
        source: 'v',
        events: { events: Array.from({ length: 25 }, (_, i) => ({ id: `v${b}-${i}`, event_type: 't', payload: Buffer.alloc(200, 1) })) },
      });
    }
    client.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
    const config = ['--config', 'test/fixtures/durable-refusing.config.ts'];

    const ok = await cli(['validate', ...config], durableEnv(dir));
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /durable log: .* — OK/);
    assert.match(ok.out, /events\s+1 segment\(s\), 100 records, 0 corrupt, torn tail 0 bytes/);
    assert.match(ok.out, /cursors\s+picky@101/);

    const segment = join(
      dir,
      'events',
      readdirSync(join(dir, 'events'))
        .filter((f) => f.endsWith('.log'))
        .sort()
        .at(-1)!,
    );
    const bytes = readFileSync(segment);
    writeFileSync(segment, Buffer.concat([bytes, Buffer.from([0xff, 0x00, 0x00, 0x00, 0x12])])); // a write cut short
    const torn = await cli(['validate', ...config], durableEnv(dir));
    assert.equal(torn.code, 0, 'a torn tail is what a crash leaves: reported, not an error');
    assert.match(torn.out, /torn tail 5 bytes \(cut off at the next start\)/);

    const flipped = Buffer.from(bytes);
    // A byte inside the payload of a record in the middle: its checksum no longer matches.
    const payloadAt = bytes.indexOf(Buffer.alloc(200, 1), Math.floor(bytes.length / 2));
    assert.ok(payloadAt > 0);
    flipped[payloadAt + 100]! ^= 0xff;
    writeFileSync(segment, flipped);
    const damaged = await cli(['validate', ...config], durableEnv(dir));
    assert.equal(damaged.code, 1);
    assert.match(damaged.err, /POLKU_ERR_LOG_DAMAGED: .*/);
    assert.match(damaged.err, /— DAMAGED/);
    assert.match(damaged.err, /99 records, 1 corrupt/);
    const check = await checkDurableDir(dir);
    assert.equal(check.healthy, false);
    assert.deepEqual(readFileSync(segment), flipped, 'validate only reads: the file is as it was');
  });

  test('validate of a directory where nothing was stored yet says so and passes', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'polku-validate-empty-')), 'never-used');
    const r = await cli(['validate', '--config', 'test/fixtures/durable-refusing.config.ts'], durableEnv(dir));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /durable log: .*never-used \(empty: nothing stored yet\)/);
  });
});
