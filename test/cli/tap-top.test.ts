import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { EventJson } from '../../src/emit/event-json.js';
import { runPolku, servePolku, type PolkuProcess } from '../helpers/polku-process.js';

const TOKEN = 'tap-top-token';

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('polku tap and polku top against a running gateway', () => {
  let gw: PolkuProcess & { grpcPort: number; metricsPort: number };
  /** `polku send` one event; it exits 1 when the Ack refused it (a middleware filtered it). */
  const send = async (type: string, source = 'cli-tap', code = 0) => {
    const p = runPolku(['send', '--addr', `127.0.0.1:${gw.grpcPort}`, '--source', source, '--type', type, '--payload', `hello ${type}`]);
    assert.equal((await p.exited).code, code, p.stdout.join('\n') + p.stderr.join('\n'));
  };

  before(async () => {
    // users-only drops everything but user.*; tag-env adds metadata env=test; the emitter is "memory".
    gw = await servePolku(['--config', 'test/fixtures/filtering.config.ts'], { POLKU_ADMIN_TOKEN: TOKEN });
  });
  after(async () => {
    gw.child.kill('SIGTERM');
    await gw.exited;
  });

  test('polku tap prints the sampled events as NDJSON on stdout until --limit, notices on stderr', async () => {
    // Found through POLKU_METRICS_ADDR, as on the gateway's own host; the token from POLKU_ADMIN_TOKEN.
    const tap = runPolku(['tap', '--at', 'middleware', '--source', 'cli-tap', '--limit', '2'], {
      POLKU_METRICS_ADDR: `127.0.0.1:${gw.metricsPort}`,
      POLKU_ADMIN_TOKEN: TOKEN,
    });
    await tap.line(/polku tap: sampling at middleware \(source=cli-tap\), 2 events/);
    await send('audit.login', 'cli-tap', 1); // dropped by users-only: never sampled after middleware
    await send('user.signup');
    await send('user.login', 'someone-else'); // another source: filtered out
    await send('user.logout');
    const { code } = await tap.exited;
    assert.equal(code, 0, tap.stderr.join('\n'));
    const sampled = tap.stdout.map((l) => JSON.parse(l) as EventJson);
    assert.deepEqual(
      sampled.map((e) => [e.source, e.event_type, e.metadata['env'], e.payload]),
      [
        ['cli-tap', 'user.signup', 'test', 'hello user.signup'],
        ['cli-tap', 'user.logout', 'test', 'hello user.logout'],
      ],
    );
    assert.ok(
      tap.stderr.some((l) => l === 'polku tap: ended (limit): 2 sampled, 0 dropped'),
      tap.stderr.join('\n'),
    );
  });

  test("polku tap with a wrong token or a bad --at exits 1 with the gateway's reason", async () => {
    const wrong = runPolku(['tap', '--admin', `127.0.0.1:${gw.metricsPort}`, '--token', 'nope']);
    assert.equal((await wrong.exited).code, 1);
    assert.match(
      wrong.stderr.join('\n'),
      /polku tap: the gateway answered 401: admin endpoints needs authorization: Bearer <POLKU_ADMIN_TOKEN>/,
    );
    const bad = runPolku(['tap', '--admin', `127.0.0.1:${gw.metricsPort}`, '--token', TOKEN, '--at', 'emitter:nope']);
    assert.equal((await bad.exited).code, 1);
    assert.match(bad.stderr.join('\n'), /400: at=emitter:nope: no emitter of that name runs \(running: memory\)/);
  });

  test('polku tap without --limit runs until Ctrl-C, then exits 0', async () => {
    const tap = runPolku(['tap', '--at', 'ingest', '--admin', `127.0.0.1:${gw.metricsPort}`], { POLKU_ADMIN_TOKEN: TOKEN });
    await tap.line(/polku tap: sampling at ingest$/);
    await send('user.ctrl-c', 'ctrl-c');
    await tap.line(/"event_type":"user\.ctrl-c"/);
    tap.child.kill('SIGINT');
    assert.equal((await tap.exited).code, 0);
  });

  test('polku top --once prints one table of rates per stage', async () => {
    const top = runPolku(['top', '--once', '--interval', '300', '--admin', `127.0.0.1:${gw.metricsPort}`], { POLKU_ADMIN_TOKEN: TOKEN });
    const { code } = await top.exited;
    assert.equal(code, 0, top.stderr.join('\n'));
    const out = top.stdout.join('\n');
    assert.match(out, /^polku top {2}127\.0\.0\.1:\d+ {2}\S+ {2}up \d+s$/m);
    assert.match(out, /^STAGE +NAME +EVENTS\/S +TOTAL +DETAIL$/m);
    // Five events went in through polku send (polku.v1 events, no ingestor); four were user.*.
    assert.match(out, /^intake +received \d+\.\d\/s \(5\), accepted \d+\.\d\/s \(4\)$/m);
    assert.match(out, /^ingest +\(polku\.v1 events\) +\d+\.\d +5 +problems 0$/m);
    assert.match(out, /^middleware +users-only +\d+\.\d +4 +in \d+\.\d\/s, dropped 1$/m);
    assert.match(out, /^middleware +tag-env +\d+\.\d +4 +in /m);
    assert.match(out, /^emitter +memory +\d+\.\d +4 +queued 0, in flight 0, retried 0$/m);
    assert.match(out, /^buffer +0\/500 events/m);
    assert.match(out, /^dropped +filtered 1 \(\d+\.\d\/s\)$/m);
  });

  test('polku top against a port where no gateway listens says so and exits 1', async () => {
    const top = runPolku(['top', '--once', '--admin', `127.0.0.1:${await deadPort()}`]);
    assert.equal((await top.exited).code, 1);
    assert.match(
      top.stderr.join('\n'),
      /cannot reach the gateway's admin endpoint at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); is it running\?/,
    );
  });

  test('a misspelt flag is a usage error naming it', async () => {
    const top = runPolku(['top', '--onse']);
    assert.notEqual((await top.exited).code, 0);
    assert.match(top.stderr.join('\n'), /Unknown option '--onse'/);
  });
});
