import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { EventJson } from '../../src/emit/event-json.js';
import { AckStream, events, protoOnlyClient, until } from '../helpers/gateway-harness.js';
import { ROOT, runPolku, servePolku, stdoutEvents, type PolkuProcess } from '../helpers/polku-process.js';

/* The CLI as a person at a terminal meets it: help, version, and mistakes as one line with a hint. */

async function run(args: string[], env: Record<string, string> = {}, stdin?: string) {
  const p = runPolku(args, env, false, stdin);
  const { code } = await p.exited;
  return { code, out: p.stdout.join('\n'), err: p.stderr.join('\n'), stderr: p.stderr.filter((l) => l !== '') };
}

/** A port nothing listens on: bound, then freed. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const NO_STACK = /^\s+at /m;

describe('polku: help, version and usage mistakes', () => {
  test('--version prints the version of package.json through bin/polku.js, exit 0', async () => {
    const p = runPolku(['--version'], {}, true);
    assert.equal((await p.exited).code, 0);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual(p.stdout.filter(Boolean), [pkg.version]);
  });

  test('every command answers --help with its own usage and options, exit 0', async () => {
    for (const [command, option] of [
      ['serve', '--config FILE'],
      ['validate', '--config FILE'],
      ['send', '--file FILE'],
      ['dlq', '--limit N'],
      ['replay', '--from T'],
      ['plugins', '--json'],
    ] as const) {
      const r = await run([command, '--help']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`^Usage: polku ${command} `, 'm'));
      assert.ok(r.out.includes(option), `${command} --help shows ${option}:\n${r.out}`);
    }
    const help = await run(['help', 'send']);
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: polku send /m);
  });

  test('no command: the overview on stderr, exit 2; --help: on stdout, exit 0', async () => {
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.err, /^Commands:/m);
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /^ {2}send {4}/m);
  });

  test('an unknown flag: one line naming it with a did-you-mean, a hint, exit 2', async () => {
    const r = await run(['send', '--fil', 'x.json']);
    assert.equal(r.code, 2);
    assert.deepEqual(r.stderr, ['polku: send has no option --fil: did you mean --file?', "run 'polku send --help' for usage"]);
    assert.equal(r.out, '');
  });

  test('an unknown command: one line with a did-you-mean, exit 2', async () => {
    const r = await run(['sned']);
    assert.equal(r.code, 2);
    assert.deepEqual(r.stderr, ['polku: unknown command "sned": did you mean "send"?', "run 'polku --help' for the commands"]);
  });

  test('--file without a value, and --file naming no file: one line each, exit 2, no stack trace', async () => {
    const noValue = await run(['send', '--file']);
    assert.equal(noValue.code, 2);
    assert.equal(noValue.stderr[0], 'polku: send --file wants a value (FILE)');
    const missing = await run(['send', '--file', 'nope/events.json']);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr[0], 'polku: cannot read --file nope/events.json: no such file');
    assert.equal(missing.stderr.length, 2);
    assert.doesNotMatch(missing.err, NO_STACK);
  });

  test('--debug adds the stack trace to the same message', async () => {
    const r = await run(['send', '--file', 'nope/events.json', '--debug']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr[0], 'polku: cannot read --file nope/events.json: no such file');
    assert.match(r.err, NO_STACK);
  });

  test('a stopped gateway: "no gateway at ADDR" with the hint, exit 1', async () => {
    const port = await freePort();
    const r = await run(['send', '--addr', `127.0.0.1:${port}`, '--timeout-ms', '3000']);
    assert.equal(r.code, 1, r.err);
    assert.equal(r.stderr[0], `polku: no gateway at 127.0.0.1:${port}: is \`polku serve\` running? (POLKU_GRPC_ADDR)`);
    assert.match(r.stderr[1]!, /gRPC error 14/);
    assert.equal(r.out, '', 'nothing on stdout: there is no Ack');
  });

  test('the admin commands against a stopped gateway name the address and the variables, exit 1', async () => {
    const port = await freePort();
    const r = await run(['plugins', '--admin', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.stderr[0]!, new RegExp(`^polku: no gateway admin endpoint at http://127.0.0.1:${port}: .*POLKU_ADMIN_ADDR`));
  });

  test('a durable data dir that cannot be written: serve stops naming the dir and POLKU_DATA_DIR, exit 1, no stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-datadir-'));
    // A file where a directory should be: refused even for root, which permission bits are not.
    writeFileSync(join(dir, 'file'), '');
    const dataDir = join(dir, 'file', 'data');
    const r = await run(['serve'], {
      POLKU_DURABLE: 'true',
      POLKU_DATA_DIR: dataDir,
      POLKU_GRPC_ADDR: '127.0.0.1:0',
      POLKU_METRICS_ADDR: '127.0.0.1:0',
      POLKU_OTLP_GRPC_ADDR: 'off',
      POLKU_OTLP_HTTP_ADDR: 'off',
    });
    assert.equal(r.code, 1, r.err);
    const message = r.stderr.find((l) => l.startsWith('polku: '));
    assert.equal(
      message,
      `polku: POLKU_ERR_STORAGE_IO: the durable data dir ${dataDir} cannot be written (ENOTDIR): ` +
        'set POLKU_DATA_DIR to a writable directory (in the chart: a volume mounted there)',
    );
    assert.doesNotMatch(r.err, NO_STACK);
  });
});

describe('polku send --file - reads standard input', () => {
  let gw: PolkuProcess & { grpcPort: number };
  before(async () => {
    gw = await servePolku([]);
  });
  after(async () => {
    gw.child.kill('SIGTERM');
    await gw.exited;
  });

  test('NDJSON on stdin: every line sent, the Ack printed, exit 0', async () => {
    const r = await run(
      ['send', '--addr', `127.0.0.1:${gw.grpcPort}`, '--file', '-'],
      {},
      '{"id":"s1","event_type":"from.stdin"}\n{"id":"s2","event_type":"from.stdin"}\n',
    );
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).eventIds, ['s1', 's2']);
    await gw.line(/"id":"s2"/);
    assert.deepEqual(
      stdoutEvents(gw)
        .filter((e) => e.event_type === 'from.stdin')
        .map((e) => e.id),
      ['s1', 's2'],
    );
  });

  test('a pretty-printed JSON array on stdin is read as one document', async () => {
    const body = JSON.stringify(
      [
        { id: 'a1', event_type: 'array.stdin' },
        { id: 'a2', event_type: 'array.stdin' },
      ],
      null,
      2,
    );
    const r = await run(['send', '--addr', `127.0.0.1:${gw.grpcPort}`, '--file', '-'], {}, body);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).eventIds, ['a1', 'a2']);
  });
});

describe('logs on stderr, events alone on stdout', () => {
  test('polku serve with the stdout emitter: every stdout line is an event, every log line is on stderr', async () => {
    const gw = await servePolku([], { POLKU_LOG_LEVEL: 'debug' });
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const ids: string[] = [];
    for (let b = 0; b < 5; b++) {
      const ack = await stream.send({ source: 'split', events: { events: events(40, (i) => ({ id: `split-${b}-${i}` })) } });
      ids.push(...ack.event_ids);
    }
    assert.equal(ids.length, 200);
    await until(() => stdoutEvents(gw).length === 200, 'every event printed', 20_000);
    gw.child.kill('SIGTERM');
    await stream.status;
    client.close();
    assert.equal((await gw.exited).code, 0);

    const stdout = gw.stdout.filter((l) => l !== '');
    assert.equal(stdout.length, 200, 'stdout holds the 200 events and nothing else');
    const printed = stdout.map((l) => JSON.parse(l) as EventJson);
    assert.deepEqual(
      printed.map((e) => e.id),
      ids,
    );
    for (const e of printed) {
      assert.deepEqual(Object.keys(e).slice(0, 4), ['id', 'timestamp_unix_ns', 'source', 'event_type']);
      assert.equal((e as unknown as Record<string, unknown>)['level'], undefined);
    }
    const logs = gw.stderr.filter((l) => l !== '').map((l) => JSON.parse(l) as { level: number; msg: string });
    const messages = logs.map((r) => r.msg);
    for (const msg of ['pipeline loaded', 'gateway listening', 'buffer drained', 'gateway stopped']) {
      assert.ok(messages.includes(msg), `"${msg}" logged on stderr`);
    }
    assert.ok(
      logs.every((r) => typeof r.level === 'number'),
      'every stderr line is a log record',
    );
  });
});
