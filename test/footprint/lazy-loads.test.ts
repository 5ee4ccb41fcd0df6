// What `polku serve` loads is what it uses: the HTTP front door, the OTLP receiver and
// its codecs, the sinks' client libraries and the Kubernetes client are imported only when
// their setting turns them on (docs/benchmarks.md, "Footprint", has what each costs), and
// grpc-health-check (with the protobufjs codecs it builds at import) not at all: the gateway
// serves grpc.health.v1 itself, and fastify never (the front door is a node:http handler). The process runs with a preload that records every module it
// resolves (test/helpers/import-recorder.mjs); the same recorder sees the optional parts when
// they are on, so an empty list is not a blind recorder.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { FakeApiServer } from '../discovery/fake-apiserver.js';
import { until } from '../helpers/gateway-harness.js';
import { ROOT, servePolku } from '../helpers/polku-process.js';

const RECORDER = join(ROOT, 'test', 'helpers', 'import-recorder.mjs');
const dir = mkdtempSync(join(tmpdir(), 'polku-lazy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** What each optional part is recognised by among the resolved URLs. */
const PARTS = {
  // No longer a dependency of the gateway: the front door is served by node:http alone.
  fastify: '/node_modules/fastify/',
  'HTTP receiver': '/receive/http/http-receiver.',
  'OTLP receiver': '/receive/otlp/otlp-receiver.',
  'OTLP logs codec': '/gen/opentelemetry/proto/collector/logs/',
  pg: '/node_modules/pg/',
  ioredis: '/node_modules/ioredis/',
  '@nats-io': '/node_modules/@nats-io/',
  '@aws-sdk/client-s3': '/node_modules/@aws-sdk/client-s3/',
  '@kubernetes/client-node': '/node_modules/@kubernetes/client-node/',
  // Discovery's and the enricher's own list/watch client (src/discovery/kube/).
  'Kubernetes list/watch': '/discovery/kube/kube-api.',
  // grpc.health.v1 is served by src/server/health-service.ts: no proto-loader/protobufjs at start.
  'grpc-health-check': '/node_modules/grpc-health-check/',
  '@grpc/proto-loader': '/node_modules/@grpc/proto-loader/',
} as const;
type Part = keyof typeof PARTS;

let runs = 0;
/** Starts `polku serve` with `env` under the recorder, stops it, and answers which PARTS it loaded. */
async function loadedParts(env: Record<string, string>, beforeStop?: () => Promise<void>): Promise<{ loaded: Set<Part>; urls: string[] }> {
  const log = join(dir, `imports-${++runs}.log`);
  const gw = await servePolku([], {
    ...env,
    POLKU_TEST_IMPORT_LOG: log,
    NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${RECORDER}`.trim(),
  });
  await beforeStop?.();
  gw.child.kill('SIGTERM');
  assert.equal((await gw.exited).code, 0, gw.stderr.join('\n'));
  const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const loaded = new Set((Object.keys(PARTS) as Part[]).filter((p) => urls.some((u) => u.includes(PARTS[p]))));
  return { loaded, urls };
}

describe('polku serve loads only what its settings use', () => {
  test('HTTP and OTLP off, no discovery: no fastify, no OTLP receiver, no sink client, no Kubernetes client', async () => {
    const { loaded, urls } = await loadedParts({});
    // The recorder saw the gateway itself.
    assert.ok(
      urls.some((u) => u.includes('/server/gateway.')),
      'the recorder lists the gateway module',
    );
    assert.ok(
      urls.some((u) => u.includes('/node_modules/@grpc/grpc-js/')),
      'the recorder lists packages',
    );
    assert.deepEqual([...loaded], []);
  });

  test('HTTP and OTLP on: the HTTP and OTLP receivers are loaded (the recorder sees lazy imports), fastify is not', async () => {
    const { loaded } = await loadedParts({
      POLKU_HTTP_ADDR: '127.0.0.1:0',
      POLKU_OTLP_GRPC_ADDR: '127.0.0.1:0',
      POLKU_OTLP_HTTP_ADDR: '127.0.0.1:0',
    });
    assert.deepEqual([...loaded].sort(), ['HTTP receiver', 'OTLP logs codec', 'OTLP receiver']);
  });

  test('only the OTLP/HTTP port on: the OTLP receiver without the HTTP front door', async () => {
    const { loaded } = await loadedParts({ POLKU_OTLP_HTTP_ADDR: '127.0.0.1:0' });
    assert.deepEqual([...loaded].sort(), ['OTLP logs codec', 'OTLP receiver']);
  });

  test('discovery and the Kubernetes enricher on (kubeconfig with a token): their own list/watch client, not @kubernetes/client-node', async () => {
    const api = await new FakeApiServer().start();
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(kubeconfig, api.kubeconfig({ token: 'abc' }));
      const { loaded } = await loadedParts(
        {
          POLKU_DISCOVERY: 'kubernetes',
          POLKU_K8S_ENRICH: 'true',
          NODE_NAME: 'node-1',
          KUBECONFIG: kubeconfig,
          KUBERNETES_SERVICE_HOST: '',
        },
        () => until(() => api.watching('services') > 0 && api.watching('pods') > 0, 'the Services and pods watches open'),
      );
      assert.deepEqual([...loaded], ['Kubernetes list/watch']);
      // Listed and watched through it, with the kubeconfig's token.
      const kinds = new Set(api.requests.map((r) => `${r.kind} ${r.watch ? 'watch' : 'list'} ${r.authorization}`));
      for (const k of ['services list', 'services watch', 'endpointslices list', 'pods list', 'pods watch'])
        assert.ok(kinds.has(`${k} Bearer abc`), `${k} in ${[...kinds].join(', ')}`);
    } finally {
      await api.stop();
    }
  });

  test("a pipeline module importing 'polku' loads no sink client it does not construct; a RedisStreamEmitter loads ioredis alone", async () => {
    const stdout = await loadedParts({ POLKU_CONFIG: join(ROOT, 'test', 'fixtures', 'stdout.config.ts') });
    assert.deepEqual([...stdout.loaded], []);
    assert.ok(
      stdout.urls.some((u) => u.includes('/emit/redis-stream.') && u.includes('/src/')),
      'the module imported every emitter class (src/index.ts)',
    );
    const redis = await loadedParts({
      POLKU_CONFIG: join(ROOT, 'test', 'fixtures', 'redis-stream.config.ts'),
      POLKU_TEST_REDIS_URL: 'redis://127.0.0.1:1', // never reached: the emitter connects on its first batch
    });
    assert.deepEqual([...redis.loaded], ['ioredis']);
  });
});
