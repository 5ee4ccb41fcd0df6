import { strict as assert } from 'node:assert';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import * as http2 from 'node:http2';
import { IngestBatch } from '../../src/gen/polku/v1/gateway.js';
import { AckStream, events, protoOnlyClient, sample, scrape, until } from '../helpers/gateway-harness.js';
import { servePolku, type PolkuProcess } from '../helpers/polku-process.js';
import { grpcFrame, procStatusMiB } from '../helpers/raw-grpc.js';

/** The chart's settings: a 160 MB heap in a pod limited to 320 MiB. */
const CHART_NODE_OPTIONS = '--max-old-space-size=160';
const CHART_MEMORY_LIMIT_BYTES = 320 * 1024 * 1024;
const MiB = 1024 * 1024;

type Served = PolkuProcess & { grpcPort: number; metricsPort: number };
const running: Served[] = [];
after(async () => {
  for (const p of running) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
});

async function serve(env: Record<string, string> = {}): Promise<Served> {
  const p = await servePolku([], { NODE_OPTIONS: CHART_NODE_OPTIONS, ...env });
  running.push(p);
  return p;
}

async function metric(p: Served, series: string): Promise<number> {
  return sample(await scrape(p.metricsPort), series) ?? Number.NaN;
}

async function healthz(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
}

/** One batch from a normal agent, answered. */
async function agentSends(port: number): Promise<number> {
  const client = protoOnlyClient(port);
  try {
    const stream = new AckStream(client);
    const ack = await stream.send({ source: 'agent', events: { events: events(10) } });
    await stream.end();
    return ack.event_ids.length;
  } finally {
    client.close();
  }
}

/** Opens a TCP connection that sends nothing; resolves once connected. */
function silentSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
    s.on('error', () => undefined);
    s.resume(); // reads (and drops) the server's SETTINGS, so the gateway's close is seen
    s.once('close', () => closedSockets.add(s));
  });
}

const closedSockets = new WeakSet<Socket>();
const closed = (s: Socket): boolean => closedSockets.has(s);

/** A gRPC length-prefixed frame around one IngestBatch. */
describe('streams whose Acks are not read', () => {
  test('are paused: the gateway stops reading them, RSS stays under the chart limit, a normal agent is served', async () => {
    const p = await serve();
    const STREAMS = 3;
    // Raw HTTP/2 (a grpc-js client hides flow control): small batches whose Acks, never read,
    // fill the window back to the gateway, then 100 × ~3.6 MiB per stream (~1 GiB offered in all).
    const SMALL = 3_320;
    const BIG = 100;
    const small = grpcFrame(
      IngestBatch.encode(
        IngestBatch.fromPartial({ source: 'attack', payload: { $case: 'events', value: { events: [{ id: 'x', eventType: 't' }] } } }),
      ).finish(),
    );
    const payload = Buffer.alloc(900 * 1024, 0x61);
    const bigEvents = [0, 1, 2, 3].map((i) => ({ id: `big-${i}`, eventType: 't', payload }));
    const big = grpcFrame(
      IngestBatch.encode(
        IngestBatch.fromPartial({ source: 'attack', payload: { $case: 'events', value: { events: bigEvents } } }),
      ).finish(),
    );
    const sessions: http2.ClientHttp2Session[] = [];
    for (let s = 0; s < STREAMS; s++) {
      const session = http2.connect(`http://127.0.0.1:${p.grpcPort}`);
      session.on('error', () => undefined);
      sessions.push(session);
      const req = session.request({
        ':method': 'POST',
        ':path': '/polku.v1.Gateway/StreamEvents',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      req.on('error', () => undefined);
      req.pause(); // never reads its Acks
      let n = 0;
      const pump = (): void => {
        while (n < SMALL + BIG) {
          n++;
          if (!req.write(n <= SMALL ? small : big)) {
            req.once('drain', pump);
            return;
          }
        }
      };
      pump();
    }
    try {
      await until(async () => (await metric(p, 'polku_grpc_paused_streams')) === STREAMS, 'three paused streams', 60_000);
      const received = await metric(p, 'polku_events_received_total{source="attack"}');
      const offered = STREAMS * (SMALL + BIG * 4);
      assert.ok(received < offered, `the gateway stopped reading: ${received} of ${offered} events`);
      assert.equal(await agentSends(p.grpcPort), 10, 'a normal agent is answered beside them');
      assert.equal(await healthz(p.metricsPort), 200);
      assert.equal(await metric(p, 'polku_grpc_paused_streams'), STREAMS, 'the attackers are still paused');
      const now = procStatusMiB(p.child.pid!, 'VmRSS') * 1024 * 1024;
      assert.ok(now < CHART_MEMORY_LIMIT_BYTES, `RSS ${(now / MiB).toFixed(0)} MiB stays under the chart's 320 MiB`);
      assert.equal(p.child.exitCode, null, 'the gateway is still up');
    } finally {
      for (const s of sessions) s.destroy();
    }
  });
});

describe('connections', () => {
  test('silent connections beyond the cap are shed oldest first; a new agent connects and /healthz answers', async () => {
    const CAP = 20;
    const p = await serve({ POLKU_MAX_CONNECTIONS: String(CAP), POLKU_HANDSHAKE_TIMEOUT_MS: '600000' });
    const sockets: Socket[] = [];
    for (let i = 0; i < CAP + 5; i++) sockets.push(await silentSocket(p.grpcPort));
    // Each connection beyond the cap shed the oldest silent one: the first five are gone.
    await until(() => sockets.slice(0, 5).every(closed), 'the five oldest closed', 10_000);
    await until(async () => (await metric(p, 'polku_grpc_connections_open')) === CAP, `${CAP} open`, 10_000);
    assert.ok(
      sockets.slice(5).every((s) => !closed(s)),
      'the newer silent connections are still open',
    );
    assert.equal(await healthz(p.metricsPort), 200, '/healthz answers with the gRPC port full');

    assert.equal(await agentSends(p.grpcPort), 10, 'a new agent is served');
    await until(() => closed(sockets[5]!), 'the next oldest shed for the agent', 10_000);
    const text = await scrape(p.metricsPort);
    assert.equal(sample(text, 'polku_grpc_connections_shed_total{reason="capacity_pre_handshake"}'), 6);
    assert.equal(sample(text, 'polku_grpc_connections_shed_total{reason="capacity_refused"}'), 0);
    assert.equal(sample(text, 'polku_grpc_connections_shed_total{reason="handshake_timeout"}'), 0);
    assert.ok(sockets.slice(6).every((s) => !closed(s)));
    for (const s of sockets) s.destroy();
  });

  test('a connection that sends no HTTP/2 preface is closed after the handshake timeout', async () => {
    const p = await serve({ POLKU_HANDSHAKE_TIMEOUT_MS: '300' });
    const silent = await silentSocket(p.grpcPort);
    const partial = await silentSocket(p.grpcPort);
    partial.write('PRI * HTTP/2.0\r\n'); // 16 of the preface's 24 bytes
    await until(() => closed(silent) && closed(partial), 'both closed by the gateway', 10_000);
    assert.equal(await metric(p, 'polku_grpc_connections_shed_total{reason="handshake_timeout"}'), 2);
    assert.equal(await agentSends(p.grpcPort), 10, 'an agent that speaks HTTP/2 is served');
    assert.equal(await metric(p, 'polku_grpc_connections_shed_total{reason="handshake_timeout"}'), 2);
  });
});
