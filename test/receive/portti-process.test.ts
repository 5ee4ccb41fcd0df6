import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { EventJson } from '../../src/emit/event-json.js';
import { K8sEvent } from '../../src/gen/polku/v1/gateway.js';
import { RawK8sEvent } from '../../src/gen/portti/v1/raw.js';
import { sample, scrape, until, type WireAck } from '../helpers/gateway-harness.js';
import { servePolku, type PolkuProcess } from '../helpers/polku-process.js';
import {
  AnswerStream,
  decode,
  encode,
  legacyPorttiClient,
  porttiClient,
  porttiEvents,
  rawBidi,
  spoilUtf8,
  type ProtoClient,
  type WirePorttiAck,
} from './portti-clients.js';

/** The events the stdout emitter wrote so far (its lines have `event_type`; log lines do not). */
function emitted(p: PolkuProcess): EventJson[] {
  const out: EventJson[] = [];
  for (const line of p.stdout) {
    if (!line.startsWith('{')) continue;
    const json = JSON.parse(line) as Partial<EventJson> & { msg?: string };
    if (json.event_type !== undefined && json.msg === undefined) out.push(json as EventJson);
  }
  return out;
}

function payloadOf(e: EventJson): Uint8Array {
  return e.payload_base64 !== undefined ? Buffer.from(e.payload_base64, 'base64') : Buffer.from(e.payload ?? '', 'utf8');
}

async function waitForEvents(p: PolkuProcess, n: number, limitMs = 10_000): Promise<EventJson[]> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const events = emitted(p);
    if (events.length >= n) return events;
    if (Date.now() > deadline) throw new Error(`waited for ${n} events on stdout, saw ${events.length}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('PORTTI through a running `polku serve` (default pipeline, stdout emitter)', () => {
  let gw: PolkuProcess & { grpcPort: number; metricsPort: number };
  let portti: ProtoClient;
  let legacy: ProtoClient;
  /** Every id an Ack accepted, in order. */
  const accepted: string[] = [];

  before(async () => {
    gw = await servePolku([]);
    portti = porttiClient(gw.grpcPort);
    legacy = legacyPorttiClient(gw.grpcPort);
  });
  after(async () => {
    portti.close();
    legacy.close();
    gw.child.kill('SIGTERM');
    await gw.exited;
  });

  test('portti.v1 StreamK8sEvents: every action comes out one for one, ids kept, typed, the RawK8sEvent as payload', async () => {
    const stream = new AnswerStream<WirePorttiAck>(portti['StreamK8sEvents']());
    const sent = porttiEvents('p');
    const ack = await stream.send({ events: sent, source: 'portti', cluster_id: 'prod-eu' });
    assert.deepEqual(
      ack.event_ids,
      sent.map((e) => e.id),
    );
    accepted.push(...ack.event_ids);
    assert.equal((await stream.end()).code, grpc.status.OK);

    const out = (await waitForEvents(gw, 3)).filter((e) => e.id.startsWith('p-'));
    assert.deepEqual(
      out.map((e) => [e.id, e.event_type, e.source]),
      [
        ['p-create', 'portti.deployment.create', 'portti'],
        ['p-update', 'portti.pod.update', 'portti'],
        ['p-delete', 'portti.configmap.delete', 'portti'],
      ],
    );
    assert.equal(out[0]!.timestamp_unix_ns, '1796292000123456789', 'kept to the nanosecond');
    assert.equal(out[0]!.metadata['k8s.object.kind'], 'Deployment');
    assert.equal(out[0]!.metadata['k8s.object.labels.app'], 'cart');
    assert.equal(out[0]!.metadata['k8s.object.annotations.deployment.kubernetes.io/revision'], '3');
    assert.equal(out[0]!.metadata['polku.payload.format'], 'protobuf:portti.v1.RawK8sEvent');
    const update = RawK8sEvent.decode(payloadOf(out[1]!));
    assert.equal(Buffer.from(update.object).toString(), '{"kind":"Pod","status":{"phase":"Running"}}');
    assert.equal(Buffer.from(update.oldObject).toString(), '{"kind":"Pod","status":{"phase":"Pending"}}');
  });

  test('portti.v1: an event with invalid UTF-8 is missing from the Ack and from stdout, the stream answers on', async () => {
    const events = porttiEvents('q');
    events[0]!['namespace'] = 'SPOILED1';
    const { stream, client } = rawBidi(gw.grpcPort, '/portti.v1.PorttiService/StreamK8sEvents', decode.porttiAck);
    const ack = await stream.send(spoilUtf8(encode.porttiBatch({ events }), 'SPOILED1'));
    assert.deepEqual(ack.event_ids, ['q-update', 'q-delete']);
    accepted.push(...ack.event_ids);
    const next = await stream.send(encode.porttiBatch({ events: porttiEvents('r').slice(0, 1) }));
    assert.deepEqual(next.event_ids, ['r-create']);
    accepted.push(...next.event_ids);
    assert.equal((await stream.end()).code, grpc.status.OK);
    client.close();
  });

  test('portti.v1 Health answers', async () => {
    const res: any = await new Promise((resolve, reject) =>
      portti['Health']({}, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))),
    );
    assert.equal(res.healthy, true);
    assert.match(res.message, /^polku gateway healthy; no watchers/);
  });

  test('polku.v1 SendK8sEvent and StreamK8sEvents: one event each, the K8sEvent as payload, full Acks', async () => {
    const k8s = (id: string, more: Record<string, unknown> = {}) => ({
      id,
      timestamp_unix_nano: '1796292000000000001',
      resource: 'Deployment',
      action: 'UPDATE',
      namespace: 'shop',
      name: 'cart',
      object: Buffer.from('{"spec":{"replicas":3}}'),
      old_object: Buffer.from('{"spec":{"replicas":2}}'),
      cluster_id: 'prod-eu',
      ...more,
    });
    const r: any = await new Promise((resolve, reject) =>
      legacy['SendK8sEvent'](k8s('l-1'), (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))),
    );
    assert.deepEqual(r, { success: true, error: '' });
    accepted.push('l-1');

    const { stream, client } = rawBidi<WireAck>(gw.grpcPort, '/polku.v1.PorttiService/StreamK8sEvents', decode.ack);
    const batch = { events: [k8s('l-2', { resource: 'pod', action: 'create' }), k8s('l-3', { name: 'SPOILED2' })] };
    const ack = await stream.send(spoilUtf8(encode.k8sEventBatch(batch), 'SPOILED2'));
    assert.deepEqual(ack.event_ids, ['l-2']);
    assert.deepEqual(
      ack.errors.map((e) => [e.event_id, e.code]),
      [['l-3', 'INVALID_EVENT']],
    );
    accepted.push(...ack.event_ids);
    assert.equal((await stream.end()).code, grpc.status.OK);
    client.close();

    const out = await waitForEvents(gw, accepted.length);
    const l1 = out.find((e) => e.id === 'l-1')!;
    assert.equal(l1.event_type, 'portti.deployment.update');
    assert.equal(l1.timestamp_unix_ns, '1796292000000000001');
    assert.equal(l1.metadata['polku.payload.format'], 'protobuf:polku.v1.K8sEvent');
    assert.equal(Buffer.from(K8sEvent.decode(payloadOf(l1)).oldObject).toString(), '{"spec":{"replicas":2}}');
    assert.equal(out.find((e) => e.id === 'l-2')!.event_type, 'portti.pod.create');
  });

  test('nothing else was emitted: stdout holds exactly the accepted ids, each once, in order', async () => {
    // The stdout emitter counts what it wrote: once that is every accepted event, nothing is pending.
    await until(
      async () => sample(await scrape(gw.metricsPort), 'polku_events_forwarded_total{emitter="stdout"}') === accepted.length,
      'the stdout emitter to have written every accepted event',
    );
    const out = await waitForEvents(gw, accepted.length);
    assert.deepEqual(
      out.map((e) => e.id),
      accepted,
    );
  });
});
