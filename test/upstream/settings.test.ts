// Upstream POLKU's settings, through real `polku serve` and `polku validate` processes.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { hub } from '../../src/hub/builder.js';
import { AckStream, events, protoOnlyClient, startGateway, until, type RunningGateway } from '../helpers/gateway-harness.js';
import { killAll } from '../helpers/line-process.js';
import { runPolku, servePolku } from '../helpers/polku-process.js';

after(() => killAll());

/** A port nothing listens on now (the test binds it right after). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const records = (lines: string[]) =>
  lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown });

describe('unknown POLKU_* variables', () => {
  test('each is one warning at start naming it (and the setting it resembles); the gateway still serves', async () => {
    const metrics = await freePort();
    const p = runPolku(['serve'], {
      POLKU_GRPC_ADDR: '127.0.0.1:0',
      POLKU_METRICS_ADDR: `127.0.0.1:${metrics}`,
      POLKU_LOG_LEVEL: 'WARNING',
      POLKU_BUFER_CAPACITY: '5',
      POLKU_UPSTREAM_ONLY_THING: 'x',
      POLKU_HTTP_ADDR: 'off',
    });
    await until(async () => (await fetch(`http://127.0.0.1:${metrics}/readyz`).catch(() => undefined))?.status === 200, 'ready', 20_000);
    const warnings = records(p.stderr).filter((r) => r.msg.includes('is not a setting of this gateway'));
    assert.deepEqual(
      warnings.map((r) => [r.level, r.msg, r['variable']]),
      [
        [
          40,
          'POLKU_BUFER_CAPACITY is not a setting of this gateway and is ignored: did you mean POLKU_BUFFER_CAPACITY?',
          { name: 'POLKU_BUFER_CAPACITY', didYouMean: 'POLKU_BUFFER_CAPACITY' },
        ],
        [40, 'POLKU_UPSTREAM_ONLY_THING is not a setting of this gateway and is ignored', { name: 'POLKU_UPSTREAM_ONLY_THING' }],
      ],
    );
    assert.deepEqual(
      records(p.stderr).filter((r) => r.level < 40),
      [],
      'POLKU_LOG_LEVEL=WARNING: nothing below warn is logged',
    );
    p.child.kill('SIGTERM');
    assert.equal((await p.exited).code, 0);
  });

  test('polku validate lists them under the summary', async () => {
    const p = runPolku(['validate'], { POLKU_FLUSH_INTERVAL: '5' });
    assert.equal((await p.exited).code, 0, p.stderr.join('\n'));
    assert.ok(
      p.stdout.includes(
        '  warning:    POLKU_FLUSH_INTERVAL is not a setting of this gateway and is ignored: did you mean POLKU_FLUSH_INTERVAL_MS?',
      ),
      p.stdout.join('\n'),
    );
  });
});

describe('POLKU_LOG_LEVEL and POLKU_LOG_FORMAT', () => {
  test("upstream's forms, as polku validate reads them", async () => {
    const forms: Array<[string, string]> = [
      ['INFO', 'info'],
      ['Debug', 'debug'],
      ['warning', 'warn'],
      ['off', 'silent'],
      ['info,module=debug', 'info'],
      ['polku=debug,h2=warn', 'debug'],
    ];
    const runs = forms.map(([raw]) => runPolku(['validate'], { POLKU_LOG_LEVEL: raw }));
    for (const [i, p] of runs.entries()) {
      assert.equal((await p.exited).code, 0, p.stderr.join('\n'));
      assert.ok(p.stdout.includes(`  logging:    level ${forms[i]![1]}, format json`), `${forms[i]![0]}: ${p.stdout.join('\n')}`);
    }
  });

  test('a filter giving polku debug logs debug lines; a first bare info does not', async () => {
    const debug = await servePolku([], { POLKU_LOG_LEVEL: 'polku=debug,h2=warn' });
    const info = await servePolku([], { POLKU_LOG_LEVEL: 'info,polku=debug' });
    const read = records(debug.stderr).find((r) => r.msg === 'environment read');
    assert.equal(read?.level, 20);
    assert.ok((read?.['variables'] as string[]).includes('POLKU_LOG_LEVEL'));
    assert.equal(
      records(info.stderr).some((r) => r.level < 30),
      false,
    );
    for (const p of [debug, info]) {
      p.child.kill('SIGTERM');
      assert.equal((await p.exited).code, 0);
    }
  });

  test('an unparseable level stops start-up: exit 1, the variable and the accepted forms named', async () => {
    const p = runPolku(['serve'], { POLKU_LOG_LEVEL: 'verbose,polku=debug' });
    assert.equal((await p.exited).code, 1);
    assert.match(
      p.stderr.join('\n'),
      /POLKU_ERR_ENV_INVALID: invalid environment: POLKU_LOG_LEVEL="verbose,polku=debug": must be one of trace, debug, info, warn \(or warning\), .*or a filter like info,module=debug/,
    );
  });

  test('POLKU_LOG_FORMAT=pretty: readable lines on stderr, no JSON, nothing on stdout', async () => {
    const p = runPolku(['serve'], { POLKU_GRPC_ADDR: '127.0.0.1:0', POLKU_METRICS_ADDR: '127.0.0.1:0', POLKU_LOG_FORMAT: 'pretty' });
    const line = await p.line(/gateway listening/);
    assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}(\[\S+\] )?gateway listening .*grpc=127\.0\.0\.1:\d+/);
    assert.ok(p.stderr.includes(line), 'the log line is on stderr');
    assert.equal(
      p.stderr.some((l) => l.startsWith('{')),
      false,
      p.stderr.join('\n'),
    );
    assert.deepEqual(p.stdout, [], 'stdout is for events; no event was sent');
    p.child.kill('SIGTERM');
    assert.equal((await p.exited).code, 0);
  });

  test('POLKU_LOG_FORMAT=text stops start-up naming the variable', async () => {
    const p = runPolku(['serve'], { POLKU_LOG_FORMAT: 'text' });
    assert.equal((await p.exited).code, 1);
    assert.match(p.stderr.join('\n'), /POLKU_LOG_FORMAT="text": must be one of json, pretty/);
  });
});

describe('POLKU_EMIT_GRPC_ENDPOINTS and POLKU_EMIT_GRPC_LAZY', () => {
  let downstream: RunningGateway[] = [];
  const sinks = [new InMemoryEmitter({ name: 'a' }), new InMemoryEmitter({ name: 'b' })];
  after(async () => {
    await Promise.all(downstream.map((d) => d.stop()));
  });

  test('a gateway configured only through the environment forwards every event, once, to two downstream gateways', async () => {
    downstream = await Promise.all(sinks.map((sink) => startGateway(hub().emitter(sink))));
    const endpoints = `127.0.0.1:${downstream[0]!.grpcPort},http://127.0.0.1:${downstream[1]!.grpcPort}`;
    const gw = await servePolku([], { POLKU_EMIT_GRPC_ENDPOINTS: endpoints, POLKU_BATCH_SIZE: '50', POLKU_FLUSH_INTERVAL_MS: '1' });
    // Eager (the default): both endpoints were contacted at start.
    await gw.line(new RegExp(`"endpoint":"127\\.0\\.0\\.1:${downstream[0]!.grpcPort}","msg":"grpc endpoint reachable"`));
    await gw.line(new RegExp(`"endpoint":"http://127\\.0\\.0\\.1:${downstream[1]!.grpcPort}","msg":"grpc endpoint reachable"`));
    const loaded = records(gw.stderr).find((r) => r.msg === 'pipeline loaded')!;
    assert.deepEqual(loaded['emitters'], ['stdout', 'grpc']);
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const sent: string[] = [];
    for (let b = 0; b < 20; b++) {
      const ack = await stream.send({ source: 'fwd', events: { events: events(50, (i) => ({ id: `f-${b}-${i}` })) } });
      assert.equal(ack.event_ids.length, 50);
      sent.push(...ack.event_ids);
    }
    await until(() => sinks[0]!.count + sinks[1]!.count >= 1000, 'every event downstream', 20_000);
    const received = [...sinks[0]!.events, ...sinks[1]!.events].map((e) => e.id);
    assert.equal(received.length, 1000);
    assert.deepEqual([...received].sort(), [...sent].sort(), 'every event once, none twice');
    assert.ok(sinks[0]!.count > 0 && sinks[1]!.count > 0, `both downstream gateways take batches (${sinks[0]!.count}, ${sinks[1]!.count})`);
    client.close();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('eager: an endpoint nothing answers on is a warning at start; lazy: not before the first event', async () => {
    const dead = await freePort();
    const eager = await servePolku([], { POLKU_EMIT_GRPC_ENDPOINTS: `127.0.0.1:${dead}` });
    const down = JSON.parse(await eager.line(/"grpc endpoint down; reconnecting with backoff"/)) as Record<string, unknown>;
    assert.equal(down['endpoint'], `127.0.0.1:${dead}`);
    assert.match(String(down['reason']), /^not reachable at start: UNAVAILABLE/);
    const lazy = await servePolku([], { POLKU_EMIT_GRPC_ENDPOINTS: `127.0.0.1:${dead}`, POLKU_EMIT_GRPC_LAZY: 'true' });
    assert.equal(
      lazy.stderr.some((l) => l.includes('grpc endpoint')),
      false,
    );
    const client = protoOnlyClient(lazy.grpcPort);
    const ack = await new AckStream(client).send({ source: 'lazy', events: { events: events(1) } });
    assert.equal(ack.event_ids.length, 1);
    await lazy.line(/"grpc endpoint down; reconnecting with backoff"/);
    client.close();
    for (const p of [eager, lazy]) p.child.kill('SIGKILL');
  });

  test('a pipeline module with its own emitter named grpc is refused, naming both', async () => {
    const p = runPolku(['serve', '--config', 'test/fixtures/grpc-named.config.ts'], { POLKU_EMIT_GRPC_ENDPOINTS: '127.0.0.1:1' });
    assert.equal((await p.exited).code, 1);
    assert.match(
      p.stderr.join('\n'),
      /POLKU_ERR_PIPELINE_INVALID: POLKU_EMIT_GRPC_ENDPOINTS adds the emitter "grpc", and the pipeline test\/fixtures\/grpc-named.config.ts has an emitter named "grpc" \(GrpcEmitter\) already/,
    );
  });

  test('a bad endpoint stops start-up: exit 1, the variable named', async () => {
    const p = runPolku(['serve'], { POLKU_EMIT_GRPC_ENDPOINTS: 'downstream' });
    assert.equal((await p.exited).code, 1);
    assert.match(p.stderr.join('\n'), /POLKU_EMIT_GRPC_ENDPOINTS="downstream": "downstream" is not host:port/);
  });
});
