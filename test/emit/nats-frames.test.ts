// HpubWriter (src/emit/nats-frames.ts), the NatsEmitter's own frame writer, against a real
// nats-server: its frames arrive as the client's own publish sends them (subject, reply, header,
// body, multi-byte text), across chunk boundaries and above a chunk, and the per-message refusals
// it makes itself (over max_payload, an id with CR/LF) fail that event alone.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, createInbox, headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { systemClock, systemTimers } from '../../src/clock.js';
import type { EventJson } from '../../src/emit/event-json.js';
import { HpubWriter } from '../../src/emit/nats-frames.js';
import { NatsEmitter } from '../../src/emit/nats.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createRegistry } from '../../src/observability/metrics.js';
import { fullEvent } from '../helpers/full-event.js';
import { until } from '../helpers/gateway-harness.js';
import { natsMissing, NatsServer } from '../helpers/nats-server.js';

const skip = natsMissing();
/** The server's max_payload here: small, so one event can pass it. */
const MAX_PAYLOAD = 128 * 1024;
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
const emitters: NatsEmitter[] = [];
const confDir = mkdtempSync(join(tmpdir(), 'polku-nats-conf-'));

before(async () => {
  if (skip) return;
  const conf = join(confDir, 'nats.conf');
  writeFileSync(conf, `max_payload: ${MAX_PAYLOAD}\n`);
  server = await NatsServer.start(['-c', conf]);
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
});
after(async () => {
  for (const e of emitters) await e.shutdown();
  await nc?.close();
  await server?.close();
  rmSync(confDir, { recursive: true, force: true });
});

async function emitter(name: string, subject: string) {
  const e = new NatsEmitter({ name, servers: server.url, subject, timeoutMs: 5_000 });
  e.init({ registry: createRegistry(), logger: silentLogger(), clock: systemClock, timers: systemTimers });
  emitters.push(e);
  await until(() => e.health().healthy, 'the emitter connected');
  return e;
}

/** Every message of `stream`, in order: the event JSON's id and the Nats-Msg-Id header. */
async function stored(stream: string): Promise<Array<{ id: string; msgId: string | undefined; event: EventJson }>> {
  const info = await jsm.streams.info(stream);
  const out: Array<{ id: string; msgId: string | undefined; event: EventJson }> = [];
  if (info.state.messages === 0) return out;
  const it = await (await jetstream(nc).consumers.get(stream)).fetch({ max_messages: info.state.messages, expires: 5_000 });
  for await (const m of it) {
    const event = m.json<EventJson>();
    out.push({ id: event.id, msgId: m.headers?.get('Nats-Msg-Id'), event });
    if (out.length === info.state.messages) break;
  }
  return out;
}

describe('HpubWriter and the NatsEmitter frames', { skip }, () => {
  test('a frame arrives as nc.publish sends it: subject, reply, Nats-Msg-Id, body bytes (multi-byte text too)', async () => {
    const got: Msg[] = [];
    const sub = nc.subscribe('frames.>', { callback: (_err, m) => void got.push(m) });
    const sender = await connect({ servers: server.url });
    try {
      const writer = HpubWriter.of(sender);
      assert.ok(writer, 'this client has a protocol handler to write frames to');
      const body = JSON.stringify({ text: 'värde ✓ κλειδί', n: 1 });
      const reply = createInbox();
      assert.equal(writer.refusal(), null);
      assert.equal(writer.publish('frames.a', `${reply}.1`, 'ïd-1', body), null);
      writer.flush();
      const h = headers();
      h.set('Nats-Msg-Id', 'ïd-1');
      sender.publish('frames.b', new TextEncoder().encode(body), { reply: `${reply}.1`, headers: h });
      await sender.flush();
      await until(() => got.length === 2, 'both messages arrived');
      const [a, b] = got as [Msg, Msg];
      assert.equal(a.subject, 'frames.a');
      assert.equal(b.subject, 'frames.b');
      assert.equal(a.reply, b.reply);
      assert.equal(a.headers?.get('Nats-Msg-Id'), 'ïd-1');
      assert.equal(b.headers?.get('Nats-Msg-Id'), 'ïd-1');
      assert.deepEqual(Buffer.from(a.data), Buffer.from(b.data));
      assert.equal(a.string(), body);
      assert.equal(sender.stats().outMsgs, 2, 'the client counts the written frame as a message');
    } finally {
      sub.unsubscribe();
      await sender.close();
    }
  });

  test('batches across chunk boundaries and a message larger than a chunk arrive whole, in order, once', async () => {
    await jsm.streams.add({ name: 'F1', subjects: ['f1.>'] });
    const e = await emitter('f1', 'f1.{source}');
    // ~700 B each: 400 events are about four 64 KiB chunks; one event of ~100 KB is more than a chunk alone.
    const events = Array.from({ length: 400 }, (_, i) =>
      fullEvent({ id: `c${i}`, payload: i === 217 ? new Uint8Array(100_000).fill(0x61) : new Uint8Array(300).fill(i % 251) }),
    );
    assert.deepEqual(await e.emit(events), { status: 'success' });
    const got = await stored('F1');
    assert.deepEqual(
      got.map((m) => m.id),
      events.map((ev) => ev.id),
    );
    assert.ok(got.every((m) => m.msgId === m.id));
    assert.equal(got[217]!.event.payload, 'a'.repeat(100_000));
    assert.deepEqual(got[5]!.event.metadata, fullEvent().metadata);
  });

  test("over the server's max_payload, or an id with CR/LF: that event fails alone, permanent; neighbours are stored", async () => {
    await jsm.streams.add({ name: 'F2', subjects: ['f2.>'] });
    const e = await emitter('f2', 'f2.{source}');
    const events = [
      fullEvent({ id: 'p0' }),
      fullEvent({ id: 'huge', payload: new Uint8Array(MAX_PAYLOAD).fill(1) }),
      fullEvent({ id: 'p2' }),
      fullEvent({ id: 'bad\r\nid' }),
      fullEvent({ id: 'p4' }),
    ];
    const r = await e.emit(events);
    assert.ok(r.status === 'partial', JSON.stringify(r));
    assert.deepEqual(
      r.failures.map((f) => [f.index, f.retryable]),
      [
        [1, false],
        [3, false],
      ],
    );
    assert.match(r.failures[0]!.error, new RegExp(`over the server's max_payload of ${MAX_PAYLOAD}`));
    assert.match(r.failures[1]!.error, /CR or LF/);
    assert.deepEqual(
      (await stored('F2')).map((m) => m.id),
      ['p0', 'p2', 'p4'],
    );
  });

  test('a client without a protocol handler gets no writer; the emitter then publishes message by message', async () => {
    assert.equal(HpubWriter.of({} as NatsConnection), null);
    assert.equal(HpubWriter.of({ protocol: { sendCommand: () => undefined } } as unknown as NatsConnection), null);
    await jsm.streams.add({ name: 'F3', subjects: ['f3.>'] });
    const e = await emitter('f3', 'f3.{source}');
    assert.deepEqual(await e.emit([fullEvent({ id: 'w0' })]), { status: 'success' });
    (e as unknown as { frames: HpubWriter | null }).frames = null; // as a client without one would leave it
    assert.deepEqual(await e.emit([fullEvent({ id: 'w1' }), fullEvent({ id: 'w0' })]), { status: 'success' });
    assert.deepEqual(
      (await stored('F3')).map((m) => [m.id, m.msgId]),
      [
        ['w0', 'w0'],
        ['w1', 'w1'],
      ],
    );
  });
});
