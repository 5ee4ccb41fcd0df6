// A strict reflection client against a real `polku serve`: test/tools/grpcurl.py (Python, apt's
// python3-grpcio) knows the gateway only through server reflection and builds every file into a
// fresh descriptor_pool.DescriptorPool, which refuses a file whose imports are missing or whose map
// entry is malformed (as grpcurl, Postman and buf do). It resolves every listed service, builds every
// method's request and response, and calls the Gateway and grpc.health.v1 through them, over both
// reflection versions. The README's grpcurl commands are extracted and run through it as written.
// A second strict client needs nothing beyond npm: `buf curl` (Go, protobuf-go's protodesc, the
// descriptor checks grpcurl itself uses) resolves every method and calls the Gateway.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { builtInDescriptorSet } from '../../src/server/reflection-index.js';
import { until } from '../helpers/gateway-harness.js';
import { killAll, track } from '../helpers/line-process.js';
import { ROOT, servePolku, stdoutEvents, type PolkuProcess } from '../helpers/polku-process.js';
import { runSetupScript } from '../helpers/setup-script.js';

const PYTHON = '/usr/bin/python3';
const GRPCURL = join(ROOT, 'test/tools/grpcurl.py');
/** The services every gateway serves (receivers added later join them). */
const CORE = [
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
  'polku.v1.Admin',
  'polku.v1.Gateway',
  'polku.v1.PluginRegistry',
];

function pythonMissing(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import grpc, grpc_tools.protoc, google.protobuf'], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `${PYTHON} with grpc and grpc_tools (apt python3-grpcio python3-grpc-tools): ${(err as Error).message.split('\n')[0]}`;
  }
}

const missing = pythonMissing();
const skip = missing !== undefined && process.env['CI'] !== 'true' ? `skipped (CI unset): no ${missing}` : false;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args` (from the repository root) and resolves with its exit code and output, whatever the code. */
async function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(file, args, { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** grpcurl.py with `args`; fails the test with its stderr unless it exits 0 (or `expectCode`). */
async function grpcurl(args: string[], env: Record<string, string> = {}, expectCode = 0): Promise<Run> {
  const r = await run(PYTHON, [GRPCURL, ...args], env);
  assert.equal(r.code, expectCode, `grpcurl ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r;
}

/** The JSON messages grpcurl printed, one after another (each ends with a `}` line of its own). */
function jsonOutputs(stdout: string): any[] {
  return stdout
    .split(/^}$/m)
    .map((chunk) => chunk.trim())
    .filter(Boolean)
    .map((chunk) => JSON.parse(`${chunk}\n}`));
}

/** Every `grpcurl …` command in the README's bash blocks, with its multi-line quoted arguments. */
function readmeGrpcurlCommands(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const commands: string[] = [];
  for (const block of readme.matchAll(/^```bash\n([\s\S]*?)^```$/gm)) {
    const lines = block[1]!.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith('grpcurl ')) continue;
      let command = lines[i]!;
      const open = (): boolean => (command.split("'").length - 1) % 2 === 1 || command.endsWith('\\');
      while (open() && i + 1 < lines.length) command += `\n${lines[++i]}`;
      commands.push(command);
    }
  }
  return commands;
}

describe('a strict reflection client (Python descriptor_pool) against polku serve', { skip }, () => {
  let polku: PolkuProcess & { grpcPort: number };
  let address: string;
  let dir: string | undefined;
  /** The events the default stdout emitter printed, by id. */
  const emitted = (): Map<string, any> => new Map(stdoutEvents(polku).map((e) => [e.id, e]));

  before(
    async () => {
      if (missing) await runSetupScript('scripts/install-plugin-toolchains.sh', ['python']);
      dir = mkdtempSync(join(tmpdir(), 'polku-reflection-'));
      // The client's own reflection messages, compiled once by grpc_tools' protoc into a temp dir.
      process.env['POLKU_GRPCURL_PROTOSET'] = join(dir, 'reflection.protoset');
      execFileSync(PYTHON, [GRPCURL, '--compile-reflection-protos', process.env['POLKU_GRPCURL_PROTOSET']], { stdio: 'pipe' });
      polku = track(await servePolku([]));
      address = `127.0.0.1:${polku.grpcPort}`;
    },
    { timeout: 600_000 },
  );
  after(async () => {
    await killAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the pool is strict: it refuses a file whose import is missing and a malformed map entry', () => {
    const set = join(dir!, 'set.binpb');
    writeFileSync(set, builtInDescriptorSet());
    const script = `
import sys
from google.protobuf import descriptor_pb2, descriptor_pool
files = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], 'rb').read()).file}
refused = []
try:
    descriptor_pool.DescriptorPool().Add(files['polku/v1/gateway.proto'])
except Exception:
    refused.append('missing import')
event = files['polku/v1/event.proto']
event.message_type[0].nested_type[0].name = 'Metadata_Entry'  # what a wrong map entry name looks like
event.message_type[0].field[4].type_name = '.polku.event.v1.Event.Metadata_Entry'
try:
    descriptor_pool.DescriptorPool().Add(event)
except Exception:
    refused.append('malformed map entry')
print(','.join(refused))
`;
    assert.equal(execFileSync(PYTHON, ['-c', script, set], { encoding: 'utf8' }).trim(), 'missing import,malformed map entry');
  });

  for (const version of ['v1', 'v1alpha']) {
    const env = { POLKU_GRPCURL_REFLECTION: version };

    test(`grpc.reflection.${version}: every listed service resolves, every method's request and response is built`, async () => {
      const listed = (await grpcurl(['-plaintext', address, 'list'], env)).stdout.trim().split('\n');
      for (const name of CORE) assert.ok(listed.includes(name), `${name} not in ${listed.join(',')}`);
      const described = (await grpcurl(['-plaintext', address, 'describe'], env)).stdout;
      assert.deepEqual(
        [...described.matchAll(/^(\S+) is a service:$/gm)].map((m) => m[1]),
        listed,
      );
      const gateway = (await grpcurl(['-plaintext', address, 'list', 'polku.v1.Gateway'], env)).stdout;
      assert.deepEqual(gateway.trim().split('\n'), [
        'polku.v1.Gateway.StreamEvents',
        'polku.v1.Gateway.SendEvent',
        'polku.v1.Gateway.Health',
      ]);
    });

    test(`grpc.reflection.${version}: SendEvent with a map and an enum, built from reflected descriptors`, async () => {
      const id = `send-${version}`;
      const event = { id, eventType: 'strict.send', metadata: { 'k8s.pod.name': 'web-1' }, severity: 'SEVERITY_WARNING', payload: 'aGk=' };
      const r = await grpcurl(
        ['-plaintext', '-d', JSON.stringify({ source: 'strict', event }), address, 'polku.v1.Gateway/SendEvent'],
        env,
      );
      const [ack] = jsonOutputs(r.stdout);
      assert.deepEqual(ack.eventIds, [id]);
      assert.equal(ack.errors, undefined);
      await until(() => emitted().has(id), `event ${id} at the stdout emitter`);
      const out = emitted().get(id);
      assert.deepEqual(
        [out.source, out.event_type, out.metadata, out.severity],
        ['strict', 'strict.send', { 'k8s.pod.name': 'web-1' }, 'SEVERITY_WARNING'],
      );
    });

    test(`grpc.reflection.${version}: StreamEvents, two batches in, two Acks out in order`, async () => {
      const batch = (ids: string[]) =>
        JSON.stringify({ source: 'strict', events: { events: ids.map((id) => ({ id, eventType: 'strict.stream' })) } });
      const a = [`${version}-a1`];
      const b = [`${version}-b1`, `${version}-b2`, `${version}-b3`];
      const r = await grpcurl(['-plaintext', '-d', `${batch(a)}\n${batch(b)}`, address, 'polku.v1.Gateway/StreamEvents'], env);
      assert.deepEqual(
        jsonOutputs(r.stdout).map((ack) => ack.eventIds),
        [a, b],
      );
      await until(() => [...a, ...b].every((id) => emitted().has(id)), 'the four streamed events at the stdout emitter');
    });

    test(`grpc.reflection.${version}: polku.v1.Gateway/Health and grpc.health.v1.Health/Check`, async () => {
      const [health] = jsonOutputs((await grpcurl(['-plaintext', address, 'polku.v1.Gateway/Health'], env)).stdout);
      assert.equal(health.healthy, true);
      assert.equal(health.components['emitter:stdout'].healthy, true);
      for (const service of ['', 'polku.v1.Gateway']) {
        const r = await grpcurl(['-plaintext', '-d', JSON.stringify({ service }), address, 'grpc.health.v1.Health/Check'], env);
        assert.deepEqual(jsonOutputs(r.stdout), [{ status: 'SERVING' }], `Check("${service}")`);
      }
      // -d @ reads the request from stdin, as grpcurl does.
      const piped = await run(
        'bash',
        ['-c', `echo '{"service": ""}' | ${PYTHON} ${GRPCURL} -plaintext -d @ ${address} grpc.health.v1.Health/Check`],
        env,
      );
      assert.equal(piped.code, 0, piped.stderr);
      assert.deepEqual(jsonOutputs(piped.stdout), [{ status: 'SERVING' }]);
    });

    test(`grpc.reflection.${version}: a refused call prints grpcurl's ERROR block and exits 64 + the status code`, async () => {
      const r = await grpcurl(['-plaintext', '-d', '{"source": "strict"}', address, 'polku.v1.Gateway/SendEvent'], env, 64 + 3);
      assert.equal(r.stderr, 'ERROR:\n  Code: InvalidArgument\n  Message: INVALID_BATCH: request has neither raw nor event\n');
    });

    test(`grpc.reflection.${version}: an unknown symbol is NOT_FOUND, and the same stream still answers`, async () => {
      // describe asks for each symbol in turn on one reflection stream: the error comes after the
      // first answer; a second run shows the server is unharmed.
      const r = await grpcurl(['-plaintext', address, 'describe', 'polku.v1.Gateway', 'polku.v1.NoSuchService'], env, 1);
      assert.match(r.stderr, /Failed to resolve symbol "polku\.v1\.NoSuchService": NOT_FOUND: symbol not found: polku\.v1\.NoSuchService/);
      const again = await grpcurl(['-plaintext', address, 'describe', 'polku.v1.NoSuchService', 'polku.event.v1.Event'], env, 1);
      assert.match(again.stderr, /NOT_FOUND/);
      const after = await grpcurl(['-plaintext', address, 'describe', 'polku.event.v1.Event'], env);
      assert.match(after.stdout, /^ {2}map<string, string> metadata = 5;$/m);
    });
  }

  test("the README's grpcurl commands, as written, each with its expected answer", async () => {
    const commands = readmeGrpcurlCommands();
    const expectations: Array<[RegExp, (r: Run) => Promise<void> | void]> = [
      [
        / list$/,
        (r) => {
          const listed = r.stdout.trim().split('\n');
          for (const name of CORE) assert.ok(listed.includes(name), `${name} not in ${listed.join(',')}`);
          assert.deepEqual(listed, [...listed].sort());
        },
      ],
      [
        / describe polku\.v1\.Gateway$/,
        (r) => {
          assert.match(r.stdout, /^polku\.v1\.Gateway is a service:$/m);
          assert.match(r.stdout, /rpc StreamEvents \( stream \.polku\.v1\.IngestBatch \) returns \( stream \.polku\.v1\.Ack \);/);
          assert.match(r.stdout, /rpc SendEvent \( \.polku\.v1\.IngestEvent \) returns \( \.polku\.v1\.Ack \);/);
          assert.match(r.stdout, /rpc Health \( \.polku\.v1\.HealthRequest \) returns \( \.polku\.v1\.HealthResponse \);/);
        },
      ],
      [
        /polku\.v1\.Gateway\/SendEvent$/,
        async (r) => {
          assert.deepEqual(
            jsonOutputs(r.stdout).map((ack) => ack.eventIds),
            [['evt-1']],
          );
          await until(() => emitted().has('evt-1'), 'evt-1 at the stdout emitter');
          const out = emitted().get('evt-1');
          assert.deepEqual([out.source, out.event_type, out.metadata, out.payload], ['my-app', 'user.signup', { team: 'web' }, 'hello']);
        },
      ],
      [
        /polku\.v1\.Gateway\/StreamEvents$/,
        (r) =>
          assert.deepEqual(
            jsonOutputs(r.stdout).map((ack) => ack.eventIds),
            [['a-1'], ['b-1', 'b-2']],
          ),
      ],
      [/polku\.v1\.Gateway\/Health$/, (r) => assert.equal(jsonOutputs(r.stdout)[0].healthy, true)],
      [/grpc\.health\.v1\.Health\/Check$/, (r) => assert.deepEqual(jsonOutputs(r.stdout), [{ status: 'SERVING' }])],
      [
        /portti\.v1\.PorttiService\/StreamK8sEvents$/,
        async (r) => {
          assert.deepEqual(
            jsonOutputs(r.stdout).map((ack) => ack.eventIds),
            [['k-1']],
          );
          await until(() => emitted().has('k-1'), 'k-1 at the stdout emitter');
          const out = emitted().get('k-1');
          assert.deepEqual(
            [
              out.source,
              out.event_type,
              out.metadata['k8s.object.kind'],
              out.metadata['k8s.namespace.name'],
              out.metadata['k8s.cluster.name'],
            ],
            ['portti', 'portti.deployment.update', 'Deployment', 'shop', 'prod'],
          );
        },
      ],
      [/portti\.v1\.PorttiService\/Health$/, (r) => assert.equal(jsonOutputs(r.stdout)[0].healthy, true)],
      [
        /polku\.v1\.PorttiService\/SendK8sEvent$/,
        async (r) => {
          assert.deepEqual(jsonOutputs(r.stdout), [{ success: true }]);
          await until(() => emitted().has('k-2'), 'k-2 at the stdout emitter');
          const out = emitted().get('k-2');
          assert.deepEqual([out.source, out.event_type, out.metadata['k8s.pod.name']], ['portti', 'portti.pod.delete', 'web-1']);
        },
      ],
    ];
    const seen = new Set<RegExp>();
    for (const command of commands) {
      assert.match(command, /localhost:50051/, command);
      const expectation = expectations.find(([pattern]) => pattern.test(command));
      assert.ok(expectation, `the README runs a grpcurl command this test has no expected answer for:\n${command}`);
      const script = `grpcurl() { ${PYTHON} ${GRPCURL} "$@"; }\n${command.replaceAll('localhost:50051', address)}`;
      const r = await run('bash', ['-c', script]);
      assert.equal(r.code, 0, `${command}\nexited ${r.code}:\n${r.stderr}`);
      await expectation[1](r);
      seen.add(expectation[0]);
    }
    assert.equal(
      seen.size,
      expectations.length,
      `README examples missing: ${expectations.filter(([p]) => !seen.has(p)).map(([p]) => p.source)}`,
    );
  });
});

describe('buf curl (Go protobuf-go descriptors, as grpcurl builds them) against polku serve', () => {
  const BUF = join(ROOT, 'node_modules/.bin/buf');
  let polku: PolkuProcess & { grpcPort: number };
  let url: string;
  const curl = async (args: string[], expectCode = 0): Promise<Run> => {
    const r = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args]);
    assert.equal(r.code, expectCode, `buf curl ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
    return r;
  };

  before(async () => {
    polku = track(await servePolku([]));
    url = `http://127.0.0.1:${polku.grpcPort}`;
  });
  after(killAll);

  for (const protocol of ['grpc-v1', 'grpc-v1alpha']) {
    test(`${protocol}: every method of every listed service resolves; SendEvent, StreamEvents and Health/Check answer`, async () => {
      const reflect = ['--reflect-protocol', protocol];
      const services = (await curl([...reflect, '--list-services', url])).stdout.trim().split('\n');
      for (const name of CORE) assert.ok(services.includes(name), `${name} not in ${services.join(',')}`);
      const methods = (await curl([...reflect, '--list-methods', url])).stdout.trim().split('\n');
      assert.deepEqual([...new Set(methods.map((m) => m.split('/')[0]))].sort(), [...services].sort());
      for (const m of [
        'polku.v1.Gateway/SendEvent',
        'polku.v1.Gateway/StreamEvents',
        'polku.v1.Gateway/Health',
        'grpc.health.v1.Health/Check',
      ]) {
        assert.ok(methods.includes(m), m);
      }
      const id = `buf-${protocol}`;
      const sent = await curl([
        ...reflect,
        '-d',
        JSON.stringify({ source: 'buf', event: { id, event_type: 'buf.curl', metadata: { a: 'b' } } }),
        `${url}/polku.v1.Gateway/SendEvent`,
      ]);
      assert.deepEqual(
        jsonOutputs(sent.stdout).map((ack) => ack.eventIds),
        [[id]],
      );
      const batch = (ids: string[]) => JSON.stringify({ source: 'buf', events: { events: ids.map((i) => ({ id: i })) } });
      const streamed = await curl([
        ...reflect,
        '-d',
        `${batch([`${id}-a`])} ${batch([`${id}-b`, `${id}-c`])}`,
        `${url}/polku.v1.Gateway/StreamEvents`,
      ]);
      assert.deepEqual(
        jsonOutputs(streamed.stdout).map((ack) => ack.eventIds),
        [[`${id}-a`], [`${id}-b`, `${id}-c`]],
      );
      const check = await curl([...reflect, '-d', '{"service": "polku.v1.Gateway"}', `${url}/grpc.health.v1.Health/Check`]);
      assert.deepEqual(jsonOutputs(check.stdout), [{ status: 'SERVING' }]);
    });
  }
});
