import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { systemClock, systemTimers } from '../../src/clock.js';
import { AhtiEmitter, type AhtiEmitterOptions } from '../../src/emit/ahti.js';
import { splitBatch } from '../../src/emit/batch-split.js';
import { Event, Outcome, Severity } from '../../src/gen/polku/v1/event.js';
import { K8sEvent } from '../../src/gen/polku/v1/gateway.js';
import { Action, RawK8sEvent, Resource } from '../../src/gen/portti/v1/raw.js';
import { EbpfType, RawEbpfEvent } from '../../src/gen/tapio/v1/raw.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { AckStream, protoOnlyClient, until } from '../helpers/gateway-harness.js';
import { servePolku, type PolkuProcess } from '../helpers/polku-process.js';

/**
 * An AHTI server written from proto/ahti/v1/events.proto with @grpc/proto-loader (not our
 * generated code). `mode` decides what it does with the next batch.
 */
type Mode = 'ack' | 'refuse' | 'drop' | 'silent';
/** A message as proto-loader decodes it: plain objects, read field by field by the tests. */
type Wire = any;

interface AhtiServer {
  address: string;
  /** Every AhtiEvent received, decoded by proto-loader (enums as names, int64 as strings). */
  events: Wire[];
  /** Streams opened so far. */
  streams: number;
  /** What to do with each next batch; once used up, `ack`. */
  script: Mode[];
  /** Metadata of the last stream. */
  lastMetadata: Record<string, string>;
  close(): Promise<void>;
}

const definition = loadSync('proto/ahti/v1/events.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: ['proto'],
});
const ahtiPkg = (grpc.loadPackageDefinition(definition) as Wire).ahti.v1;

async function startAhti(): Promise<AhtiServer> {
  const server = new grpc.Server();
  const s: AhtiServer = { address: '', events: [], streams: 0, script: [], lastMetadata: {}, close: async () => {} };
  server.addService(ahtiPkg.AhtiService.service, {
    StreamEvents: (call: grpc.ServerDuplexStream<Wire, Wire>) => {
      s.streams++;
      s.lastMetadata = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));
      call.on('data', (batch: { events: Wire[] }) => {
        const mode = s.script.shift() ?? 'ack';
        const ids = batch.events.map((e) => e.id as string);
        if (mode === 'drop') {
          // A server handler ends a call with an error status this way in grpc-js.
          call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'AHTI going away' });
          return;
        }
        if (mode === 'silent') return;
        if (mode === 'refuse') {
          call.write({ event_ids: ids.slice(0, 1), success: false, error: 'storage full' });
          return;
        }
        s.events.push(...batch.events);
        call.write({ event_ids: ids, success: true, error: '' });
      });
      call.on('end', () => call.end());
    },
    SendEvent: (_: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED }),
    Health: (_: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { healthy: true, version: 'test' }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  s.address = `127.0.0.1:${port}`;
  s.close = () =>
    new Promise<void>((resolve) => {
      server.forceShutdown();
      resolve();
    });
  return s;
}

const closers: Array<() => Promise<void>> = [];
const processes: PolkuProcess[] = [];
after(async () => {
  for (const p of processes) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  for (const c of closers) await c();
});

async function ahti(): Promise<AhtiServer> {
  const s = await startAhti();
  closers.push(() => s.close());
  return s;
}

function emitter(options: AhtiEmitterOptions): AhtiEmitter {
  const e = new AhtiEmitter(options);
  e.init({ registry: createRegistry(), logger: silentLogger(), clock: systemClock, timers: systemTimers });
  closers.push(() => e.shutdown());
  return e;
}

function batch(tag: string, n: number): Event[] {
  return Array.from({ length: n }, (_, i) => Event.fromPartial({ id: `${tag}-${i}`, source: 'test', eventType: 'custom.thing' }));
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('AhtiEmitter mapping', () => {
  test('a tapio network event: type, subtype, severity, outcome, trace, cluster, namespace, labels, entity, typed data', async () => {
    const s = await ahti();
    const e = emitter({ endpoint: s.address, headers: { authorization: 'Bearer t' } });
    const raw = RawEbpfEvent.encode(
      RawEbpfEvent.fromPartial({
        id: 'raw-1',
        type: EbpfType.EBPF_TYPE_NETWORK,
        podName: 'cart-7d9',
        containerId: 'c0ffee',
        data: {
          $case: 'network',
          value: {
            protocol: 'tcp',
            srcIp: '10.0.0.1',
            srcPort: 41000,
            dstIp: '10.0.0.2',
            dstPort: 443,
            bytesSent: 1200n,
            bytesRecv: 3400n,
            rttUs: 2500n,
            retransmits: 3n,
            dnsQuery: 'api.shop',
            dnsAnswers: ['10.0.0.2', '10.0.0.3'],
          },
        },
      }),
    ).finish();
    const event = Event.fromPartial({
      id: 'evt-net',
      timestampUnixNs: 1_764_560_000_123_456_789n,
      source: 'tapio',
      eventType: 'tapio.network.connection_reset',
      severity: Severity.SEVERITY_ERROR,
      outcome: Outcome.OUTCOME_FAILURE,
      payload: raw,
      metadata: {
        'polku.payload.format': 'protobuf:tapio.v1.RawEbpfEvent',
        'k8s.cluster.name': 'prod-eu',
        'k8s.namespace.name': 'shop',
        'k8s.pod.name': 'cart-7d9',
        'k8s.pod.uid': 'uid-123',
        'k8s.pod.labels.app': 'cart',
        'k8s.pod.labels.tier': 'web',
        trace_id: TRACE,
        span_id: '00f067aa0ba902b7',
      },
    });
    assert.deepEqual(await e.emit([event]), { status: 'success' });
    assert.equal(s.lastMetadata['authorization'], 'Bearer t');
    const got = s.events[0]!;
    assert.equal(got.id, 'evt-net');
    assert.deepEqual(got.timestamp, { seconds: '1764560000', nanos: 123456789 });
    assert.equal(got.type, 'EVENT_TYPE_NETWORK');
    assert.equal(got.subtype, 'connection_reset');
    assert.equal(got.severity, 'SEVERITY_ERROR');
    assert.equal(got.outcome, 'OUTCOME_FAILURE');
    assert.equal(got.source, 'tapio');
    assert.equal(got.trace_id, TRACE);
    assert.equal(got.span_id, '00f067aa0ba902b7');
    assert.equal(got.cluster, 'prod-eu');
    assert.equal(got.namespace, 'shop');
    assert.deepEqual(got.labels, { app: 'cart', tier: 'web' });
    assert.equal(got.entities.length, 1);
    assert.equal(got.entities[0].type, 'ENTITY_TYPE_POD');
    assert.equal(got.entities[0].id, 'uid-123');
    assert.equal(got.entities[0].name, 'cart-7d9');
    assert.equal(got.data, 'network');
    const n = got.network;
    assert.equal(n.protocol, 'tcp');
    assert.equal(n.src_ip, '10.0.0.1');
    assert.equal(n.dst_ip, '10.0.0.2');
    assert.equal(n.src_port, 41000);
    assert.equal(n.dst_port, 443);
    assert.equal(n.bytes_sent, '1200');
    assert.equal(n.bytes_received, '3400');
    assert.equal(n.rtt_current_ms, 2.5);
    assert.equal(n.retransmit_count, 3);
    assert.equal(n.dns_query, 'api.shop');
    assert.equal(n.dns_response, '10.0.0.2,10.0.0.3');
    assert.equal(n.container_id, 'c0ffee');
    assert.equal(n.pod_name, 'cart-7d9');
  });

  test('tapio container, portti deployment (replicas from the object JSON), polku.v1.K8sEvent, unknown type', async () => {
    const s = await ahti();
    const e = emitter({ endpoint: s.address });
    const container = RawEbpfEvent.encode(
      RawEbpfEvent.fromPartial({
        data: {
          $case: 'container',
          value: {
            containerId: 'c1',
            containerName: 'app',
            image: 'shop:1',
            state: 'exited',
            exitCode: 137,
            signal: 9,
            memoryLimit: 512n,
            memoryUsage: 511n,
          },
        },
      }),
    ).finish();
    const deployment = RawK8sEvent.encode(
      RawK8sEvent.fromPartial({
        resource: Resource.RESOURCE_DEPLOYMENT,
        action: Action.ACTION_UPDATE,
        namespace: 'shop',
        name: 'cart',
        object: Buffer.from(JSON.stringify({ spec: { replicas: 3 }, status: { readyReplicas: 2, updatedReplicas: 3 } })),
      }),
    ).finish();
    const k8s = K8sEvent.encode(K8sEvent.fromPartial({ resource: 'Pod', action: 'DELETE', namespace: 'shop', name: 'cart-1' })).finish();
    const events = [
      Event.fromPartial({
        id: 'c',
        eventType: 'tapio.container.oom_killed',
        payload: container,
        metadata: { 'polku.payload.format': 'protobuf:tapio.v1.RawEbpfEvent' },
      }),
      Event.fromPartial({
        id: 'd',
        eventType: 'portti.deployment.update',
        payload: deployment,
        metadata: { 'polku.payload.format': 'protobuf:portti.v1.RawK8sEvent', 'k8s.object.labels.app': 'cart' },
      }),
      Event.fromPartial({
        id: 'p',
        eventType: 'portti.pod.delete',
        payload: k8s,
        metadata: { 'polku.payload.format': 'protobuf:polku.v1.K8sEvent' },
      }),
      Event.fromPartial({ id: 'u', eventType: 'user.signup', payload: Buffer.from('{}'), metadata: { 'polku.payload.format': 'json' } }),
      Event.fromPartial({
        id: 'bad',
        eventType: 'tapio.network.x',
        payload: Buffer.from([0xff, 0xff, 0xff]),
        metadata: { 'polku.payload.format': 'protobuf:tapio.v1.RawEbpfEvent' },
      }),
    ];
    assert.deepEqual(await e.emit(events), { status: 'success' });
    const [c, d, p, u, bad] = s.events;
    assert.equal(c!.type, 'EVENT_TYPE_CONTAINER');
    assert.equal(c!.subtype, 'oom_killed');
    assert.equal(c!.data, 'container');
    assert.equal(c!.container.container_id, 'c1');
    assert.equal(c!.container.container_name, 'app');
    assert.equal(c!.container.image, 'shop:1');
    assert.equal(c!.container.state, 'exited');
    assert.equal(c!.container.exit_code, 137);
    assert.equal(c!.container.signal, 9);
    assert.equal(c!.container.memory_limit, '512');
    assert.equal(c!.container.memory_usage, '511');

    assert.equal(d!.type, 'EVENT_TYPE_DEPLOYMENT');
    assert.equal(d!.subtype, 'update');
    assert.deepEqual(d!.labels, { app: 'cart' });
    assert.equal(d!.data, 'k8s');
    assert.equal(d!.k8s.resource_type, 'deployment');
    assert.equal(d!.k8s.resource_name, 'cart');
    assert.equal(d!.k8s.namespace, 'shop');
    assert.equal(d!.k8s.reason, 'update');
    assert.equal(d!.k8s.replicas, 3);
    assert.equal(d!.k8s.ready_replicas, 2);
    assert.equal(d!.k8s.updated_replicas, 3);
    assert.equal(d!.k8s.rollout_status, 'progressing');

    assert.equal(p!.type, 'EVENT_TYPE_POD');
    assert.equal(p!.k8s.resource_type, 'pod');
    assert.equal(p!.k8s.reason, 'delete');

    assert.equal(u!.type, 'EVENT_TYPE_UNSPECIFIED');
    assert.equal(u!.subtype, 'user.signup');
    assert.equal(u!.data, undefined);

    assert.equal(bad!.type, 'EVENT_TYPE_NETWORK', 'a payload that does not decode still goes, without data');
    assert.equal(bad!.data, undefined);
  });
});

describe('AhtiEmitter acks and failures', () => {
  test('every event of many batches arrives once on one stream', async () => {
    const s = await ahti();
    const e = emitter({ endpoint: s.address });
    const all: string[] = [];
    for (let b = 0; b < 20; b++) {
      const events = batch(`b${b}`, 50);
      all.push(...events.map((x) => x.id));
      assert.deepEqual(await e.emit(events), { status: 'success' });
    }
    assert.deepEqual(
      s.events.map((x) => x.id),
      all,
    );
    assert.equal(s.streams, 1);
  });

  test('success=false refuses the listed ids with its error; the unlisted are retryable', async () => {
    const s = await ahti();
    const e = emitter({ endpoint: s.address, retryRefused: false });
    s.script.push('refuse');
    const events = batch('r', 3);
    const result = await e.emit(events);
    assert.deepEqual(result, {
      status: 'partial',
      failures: [
        { index: 0, retryable: false, error: 'AHTI refused: storage full' },
        { index: 1, retryable: true, error: 'not acknowledged: the AhtiAck did not list it' },
        { index: 2, retryable: true, error: 'not acknowledged: the AhtiAck did not list it' },
      ],
    });
    const retry = splitBatch(events, result).retry;
    assert.deepEqual(await e.emit(retry), { status: 'success' });
    assert.deepEqual(
      s.events.map((x) => x.id),
      ['r-1', 'r-2'],
    );
  });

  test('a server that drops the stream: retryable, then reconnect after the backoff and redeliver', async () => {
    const s = await ahti();
    const e = emitter({ endpoint: s.address, reconnect: { initialMs: 50, maxMs: 50 } });
    s.script.push('drop');
    const events = batch('d', 4);
    const first = await e.emit(events);
    assert.equal(first.status, 'retryable');
    assert.match((first as { error: string }).error, /AHTI stream failed before the ack/);
    assert.equal(e.health().healthy, false);
    // During the backoff: answered at once, with the time left.
    // During the backoff a batch is answered at once, with the time left (unless the 50 ms passed already).
    const during = await e.emit(events);
    if (during.status === 'retryable') {
      assert.match(during.error, /^AHTI stream down \(UNAVAILABLE: AHTI going away\); reconnecting in \d+ ms$/);
      assert.ok(during.retryAfterMs! > 0 && during.retryAfterMs! <= 50);
    } else assert.equal(during.status, 'success');
    let again: Awaited<ReturnType<AhtiEmitter['emit']>> = during;
    const deadline = Date.now() + 5000;
    while (again.status !== 'success' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, (again as { retryAfterMs?: number }).retryAfterMs ?? 10));
      again = await e.emit(events);
    }
    assert.deepEqual(again, { status: 'success' });
    assert.deepEqual(
      s.events.map((x) => x.id),
      ['d-0', 'd-1', 'd-2', 'd-3'],
    );
    assert.equal(s.streams, 2);
    assert.equal(e.health().healthy, true);
  });

  test('a server that never acks: timeout result, stream reset, the next batch goes on a new stream', async () => {
    const s = await ahti();
    const e = emitter({ endpoint: s.address, ackTimeoutMs: 200, reconnect: { initialMs: 1, maxMs: 1 } });
    s.script.push('silent');
    const result = await e.emit(batch('t', 2));
    assert.deepEqual(result, { status: 'retryable', error: 'timed out: no AhtiAck within 200 ms' });
    let next = await e.emit(batch('n', 2));
    if (next.status === 'retryable') {
      await new Promise((r) => setTimeout(r, 5));
      next = await e.emit(batch('n', 2));
    }
    assert.deepEqual(next, { status: 'success' });
    assert.equal(s.streams, 2);
    assert.deepEqual(
      s.events.map((x) => x.id),
      ['n-0', 'n-1'],
    );
  });

  test('bad options throw naming the option', () => {
    assert.throws(() => new AhtiEmitter({ endpoint: 'ahti' }), /ahti emitter "ahti": endpoint "ahti" is not host:port/);
    assert.throws(() => new AhtiEmitter({ endpoint: 'a:1', ackTimeoutMs: 0 }), /ackTimeoutMs must be a positive number/);
    assert.throws(() => new AhtiEmitter({ endpoint: 'a:1', reconnect: { initialMs: 10, maxMs: 5 } }), /reconnect needs/);
  });
});

describe('gateway → AhtiEmitter → AHTI', () => {
  test('a polku serve process with POLKU_EMIT_AHTI_ENDPOINT delivers every event once, mapped', { timeout: 60_000 }, async () => {
    const s = await ahti();
    const gw = await servePolku([], { POLKU_EMIT_AHTI_ENDPOINT: s.address, POLKU_OTLP_GRPC_ADDR: 'off', POLKU_OTLP_HTTP_ADDR: 'off' });
    processes.push(gw);
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const N = 400;
    for (let b = 0; b < N; b += 100) {
      const events = Array.from({ length: 100 }, (_, k) => ({
        id: `gw-${b + k}`,
        timestamp_unix_ns: String(1_764_560_000_000_000_000n + BigInt(b + k)),
        source: 'portti',
        event_type: 'portti.pod.update',
        severity: 'SEVERITY_WARNING',
        outcome: 'OUTCOME_SUCCESS',
        metadata: {
          'k8s.cluster.name': 'prod-eu',
          'k8s.namespace.name': 'shop',
          'k8s.pod.name': `cart-${b + k}`,
          'k8s.pod.labels.app': 'cart',
        },
        payload: Buffer.from('{}'),
      }));
      const ack = await stream.send({ source: 'portti', events: { events } });
      assert.equal(ack.event_ids.length, 100);
    }
    await stream.end();
    client.close();
    await until(() => s.events.length >= N, `${N} events at AHTI`, 20_000);
    assert.equal(s.events.length, N, 'each once');
    assert.deepEqual(s.events.map((e) => e.id).sort(), Array.from({ length: N }, (_, i) => `gw-${i}`).sort());
    for (const e of s.events) {
      const i = Number(e.id.slice(3));
      assert.equal(e.type, 'EVENT_TYPE_POD');
      assert.equal(e.subtype, 'update');
      assert.equal(e.severity, 'SEVERITY_WARNING');
      assert.equal(e.outcome, 'OUTCOME_SUCCESS');
      assert.equal(e.source, 'portti');
      assert.equal(e.cluster, 'prod-eu');
      assert.equal(e.namespace, 'shop');
      assert.deepEqual(e.labels, { app: 'cart' });
      assert.equal(e.entities[0].name, `cart-${i}`);
      assert.deepEqual(e.timestamp, { seconds: '1764560000', nanos: i });
    }
    assert.equal(s.streams, 1, 'one long-lived stream');
  });
});
