import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { AckStream, events as wireEvents, protoOnlyClient, until } from '../helpers/gateway-harness.js';
import { serveOtlp, servePolku, stdoutEvents, type OtlpGateway, type PolkuProcess } from '../helpers/polku-process.js';

/**
 * Gateway → OtlpEmitter → a second gateway's OTLP receiver (both real `polku serve` processes):
 * every event arrives once, its fields kept through OTLP and back.
 */
const processes: PolkuProcess[] = [];
after(async () => {
  for (const p of processes) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
});

/** The downstream: the embedded default pipeline (stdout) with its OTLP ports on free loopback ports. */
async function downstream(): Promise<OtlpGateway> {
  const gw = await serveOtlp([]);
  processes.push(gw);
  return gw;
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const N = 300;

function sent(tag: string) {
  return wireEvents(N, (i) => ({
    id: `${tag}-${i}`,
    timestamp_unix_ns: String(1_764_560_000_000_000_000n + BigInt(i)),
    source: 'svc-a',
    event_type: 'order.placed',
    severity: i % 2 === 0 ? 'SEVERITY_ERROR' : 'SEVERITY_INFO',
    metadata: { 'k8s.namespace.name': 'shop', 'user.tier': 'gold', 'polku.payload.format': 'json', trace_id: TRACE },
    payload: Buffer.from(`{"order":${i},"ok":true,"tags":["a","b"]}`),
  }));
}

async function run(
  tag: string,
  upstreamArgs: string[],
  upstreamEnv: (d: { otlpGrpc: number; otlpHttp: number }) => Record<string, string>,
) {
  const down = await downstream();
  const up = await servePolku(upstreamArgs, { POLKU_OTLP_GRPC_ADDR: 'off', POLKU_OTLP_HTTP_ADDR: 'off', ...upstreamEnv(down) });
  processes.push(up);
  const client = protoOnlyClient(up.grpcPort);
  const stream = new AckStream(client);
  const batch = sent(tag);
  for (let i = 0; i < N; i += 100) {
    const ack = await stream.send({ source: 'svc-a', events: { events: batch.slice(i, i + 100) } });
    assert.equal(ack.event_ids.length, 100, JSON.stringify(ack.errors.slice(0, 2)));
  }
  await stream.end();
  client.close();
  await until(() => stdoutEvents(down).length >= N, `${N} events at the downstream`, 20_000);
  const got = stdoutEvents(down);
  assert.equal(got.length, N, 'each event once');
  assert.deepEqual(got.map((e) => e.id).sort(), Array.from({ length: N }, (_, i) => `${tag}-${i}`).sort());
  const byId = new Map(got.map((e) => [e.id, e]));
  for (let i = 0; i < N; i++) {
    const e = byId.get(`${tag}-${i}`)!;
    assert.equal(e.timestamp_unix_ns, String(1_764_560_000_000_000_000n + BigInt(i)));
    assert.equal(e.source, 'svc-a', 'source → resource service.name → source');
    assert.equal(e.event_type, 'order.placed');
    assert.equal(e.severity, i % 2 === 0 ? 'SEVERITY_ERROR' : 'SEVERITY_INFO');
    assert.equal(e.payload, `{"order":${i},"ok":true,"tags":["a","b"]}`, 'JSON payload → structured body → the same JSON');
    assert.equal(e.metadata['k8s.namespace.name'], 'shop', 'resource attribute under its own name');
    assert.equal(e.metadata['service.name'], 'svc-a');
    assert.equal(e.metadata['otel.attr.user.tier'], 'gold', 'record attribute under otel.attr.');
    assert.equal(e.metadata['trace_id'], TRACE);
    assert.equal(e.metadata['polku.payload.format'], 'json');
    assert.equal(e.metadata['otel.scope.name'], 'polku');
  }
}

describe('gateway → OtlpEmitter → a second gateway’s OTLP receiver', () => {
  test('over gRPC, the emitter in a pipeline module (gzip)', { timeout: 60_000 }, async () => {
    await run('g', ['--config', 'test/fixtures/otlp-out.config.ts'], (d) => ({
      POLKU_TEST_OTLP_ENDPOINT: `127.0.0.1:${d.otlpGrpc}`,
      POLKU_TEST_OTLP_PROTOCOL: 'grpc',
    }));
  });

  test('over HTTP, the emitter from POLKU_EMIT_OTLP_* beside the default pipeline', { timeout: 60_000 }, async () => {
    await run('h', [], (d) => ({
      POLKU_EMIT_OTLP_ENDPOINT: `http://127.0.0.1:${d.otlpHttp}`,
      POLKU_EMIT_OTLP_PROTOCOL: 'http',
      POLKU_EMIT_OTLP_HEADERS: 'authorization=Bearer%20t',
    }));
  });
});
