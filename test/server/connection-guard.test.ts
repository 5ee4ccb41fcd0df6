import { strict as assert } from 'node:assert';
import { connect, type Socket } from 'node:net';
import { afterEach, test } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { ConnectionGuard, HTTP2_PREFACE_BYTES, type ConnectionLimits } from '../../src/server/connection-guard.js';
import { FakeClock, FakeTimers } from '../../src/testing/fake-time.js';
import { sample, until } from '../helpers/gateway-harness.js';

// The guard alone, on a real loopback listener, with manual time: the accepted sockets are held
// (as grpc-js would hold them) and nothing waits on a wall clock.
const open: Array<{ guard: ConnectionGuard; sockets: Socket[] }> = [];
afterEach(async () => {
  for (const { guard, sockets } of open.splice(0)) {
    for (const s of sockets) s.destroy();
    guard.destroyAll();
    await guard.stopAccepting();
  }
});

async function start(limits: Partial<ConnectionLimits>) {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const registry = createRegistry();
  const accepted: Socket[] = [];
  const guard = new ConnectionGuard({
    limits: { maxConnections: 10, handshakeTimeoutMs: 10_000, idleTimeoutMs: 300_000, maxStreamsPerConnection: 100, ...limits },
    onConnection: (s) => {
      s.resume(); // reads what the client sends, as the HTTP/2 session would
      accepted.push(s);
    },
    registry,
    logger: silentLogger(),
    clock,
    timers,
  });
  const port = await guard.listen('127.0.0.1', 0);
  const sockets: Socket[] = [];
  open.push({ guard, sockets });
  /** Sends one byte on `s` and waits until the gateway side has read it. */
  const poke = async (s: Socket): Promise<void> => {
    const server = serverOf.get(s)!;
    const before = server.bytesRead;
    s.write('x');
    await until(() => server.bytesRead > before, 'the byte read');
  };
  const serverOf = new Map<Socket, Socket>();
  const client = async (preface: boolean): Promise<Socket> => {
    const before = accepted.length;
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = connect(port, '127.0.0.1', () => resolve(c));
      c.once('error', reject);
    });
    s.on('error', () => undefined);
    s.on('close', () => closed.add(s));
    sockets.push(s);
    await until(() => accepted.length > before || closed.has(s), 'the guard saw the connection');
    const server = accepted.at(-1)!;
    serverOf.set(s, server);
    if (preface) {
      s.write(Buffer.alloc(HTTP2_PREFACE_BYTES, 0x50));
      await until(() => server.bytesRead >= HTTP2_PREFACE_BYTES, 'the preface read');
    }
    return s;
  };
  const shed = async (reason: string): Promise<number | undefined> =>
    sample(await registry.metrics(), `polku_grpc_connections_shed_total{reason="${reason}"}`);
  return { guard, timers, client, shed, poke };
}

const closed = new WeakSet<Socket>();

test('a connection from which nothing is read for the idle timeout is closed; an active one is kept', async () => {
  const { guard, timers, client, shed, poke } = await start({ idleTimeoutMs: 5_000 });
  const quiet = await client(true);
  const chatty = await client(true);
  for (let second = 0; second < 6; second++) {
    await poke(chatty);
    timers.advance(1_000);
  }
  await until(() => closed.has(quiet), 'the quiet connection closed');
  assert.equal(closed.has(chatty), false);
  assert.equal(await shed('idle_timeout'), 1);
  assert.equal(guard.size, 1);
});

test('at the cap, with every connection past its preface, the longest idle one is shed; with none idle the newcomer is refused', async () => {
  const { guard, timers, client, shed, poke } = await start({ maxConnections: 2 });
  const a = await client(true);
  const b = await client(true);
  // b stays active, a goes quiet for 30 s of sweeps.
  for (let second = 0; second < 31; second++) {
    await poke(b);
    timers.advance(1_000);
  }
  const c = await client(true);
  await until(() => closed.has(a), 'the idle connection shed');
  assert.equal(await shed('capacity_idle'), 1);
  assert.equal(closed.has(b) || closed.has(c), false);

  const d = await client(false);
  await until(() => closed.has(d), 'the newcomer refused');
  assert.equal(await shed('capacity_refused'), 1);
  assert.equal(guard.size, 2);
});
