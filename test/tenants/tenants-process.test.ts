// Tenants through real `polku serve` processes, with clients written by others: proto-loader
// clients of polku.v1.Gateway and portti.v1.PorttiService, and the OpenTelemetry SDK's exporter.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { TENANT } from '../../src/metadata-keys.js';
import { hashKey } from '../../src/tenants/api-key.js';
import type { TenantSpec } from '../../src/tenants/tenant-spec.js';
import { events, protoOnlyClient, sample, scrape, until, type WireAck } from '../helpers/gateway-harness.js';
import { serveOtlp, servePolku, stdoutEvents, type PolkuProcess } from '../helpers/polku-process.js';
import { AnswerStream, porttiClient, porttiEvents, type WirePorttiAck } from '../receive/portti-clients.js';

const WEB_KEY = 'web-key-one';
const WEB_KEY_ROTATED = 'web-key-two';
const AGENTS_KEY = 'agents-plain-key';
const QUIET_KEY = 'quiet-key';
const NOISY_KEY = 'noisy-key';

const table = (webKey: string): { tenants: TenantSpec[] } => ({
  tenants: [
    { name: 'web', apiKeys: [hashKey(webKey)], sources: ['web', 'checkout'], rate: 10_000, burst: 10_000 },
    // Plain text on purpose: accepted, with a warning at start.
    { name: 'agents', apiKeys: [AGENTS_KEY], sources: ['portti'], rate: 10_000, burst: 10_000 },
    { name: 'quiet', apiKeys: [hashKey(QUIET_KEY)], sources: ['quiet'], rate: 200, burst: 200 },
    { name: 'noisy', apiKeys: [hashKey(NOISY_KEY)], sources: ['noisy'], rate: 100, burst: 100 },
  ],
});

const withKey = (key: string | undefined): grpc.Metadata => {
  const md = new grpc.Metadata();
  if (key !== undefined) md.set('x-api-key', key);
  return md;
};

const stop = async (p: PolkuProcess): Promise<void> => {
  if (p.child.exitCode === null) p.child.kill('SIGTERM');
  await p.exited;
};

const count = (text: string, series: string): number => sample(text, series) ?? 0;

/** A StreamEvents call carrying `key` in its metadata. */
function stream(client: grpc.Client & Record<string, any>, key: string | undefined): AnswerStream<WireAck> {
  return new AnswerStream<WireAck>(client['StreamEvents'](withKey(key)));
}

function sendEvent(
  client: grpc.Client & Record<string, any>,
  key: string | undefined,
  source: string,
  id: string,
): Promise<grpc.ServiceError | WireAck> {
  return new Promise((resolve) =>
    client['SendEvent'](
      { source, event: { id, event_type: 't', payload: Buffer.from('x') } },
      withKey(key),
      (err: grpc.ServiceError | null, ack: WireAck) => resolve(err ?? ack),
    ),
  );
}

describe('tenants from POLKU_TENANTS_FILE, through polku serve', () => {
  let dir: string;
  let file: string;
  let gw: Awaited<ReturnType<typeof serveOtlp>>;
  let client: grpc.Client & Record<string, any>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'polku-tenants-'));
    file = join(dir, 'tenants.json');
    writeFileSync(file, JSON.stringify(table(WEB_KEY)));
    gw = await serveOtlp([], { POLKU_TENANTS_FILE: file });
    client = protoOnlyClient(gw.grpcPort);
  });
  after(async () => {
    client.close();
    await stop(gw);
    rmSync(dir, { recursive: true, force: true });
  });

  test('start-up says tenants are configured, and warns about a key in plain text', async () => {
    const line = JSON.parse(await gw.line(/tenants configured/)) as { tenants: string[] };
    assert.deepEqual(line.tenants, ['web', 'agents', 'quiet', 'noisy']);
    assert.match(await gw.line(/API keys written in plain text/), /"agents"/);
  });

  test('StreamEvents: no key and a wrong key are refused UNAUTHENTICATED; a forbidden source alone PERMISSION_DENIED', async () => {
    for (const key of [undefined, 'not-a-key']) {
      const s = stream(client, key);
      const ack = await s.send({ source: 'web', events: { events: events(3, (i) => ({ id: `nokey-${key}-${i}` })) } });
      assert.deepEqual(ack.event_ids, []);
      assert.equal(ack.errors.length, 1);
      assert.equal(ack.errors[0]!.code, 'UNAUTHENTICATED');
      assert.equal((await s.end()).code, grpc.status.OK, 'the stream stays usable; the Ack says why');
    }
    const s = stream(client, WEB_KEY);
    const ack = await s.send({
      source: 'web',
      events: {
        events: [
          { id: 'w1', event_type: 't', metadata: { [TENANT]: 'admin' } },
          { id: 'w2', event_type: 't', source: 'billing' },
          { id: 'w3', event_type: 't' },
        ],
      },
    });
    await s.end();
    assert.deepEqual(ack.event_ids, ['w1', 'w3']);
    assert.equal(ack.errors.length, 1);
    assert.equal(ack.errors[0]!.code, 'PERMISSION_DENIED');
    assert.match(ack.errors[0]!.message, /tenant "web" may not send source "billing" \(allowed: web, checkout\)/);
    await until(() => stdoutEvents(gw).some((e) => e.id === 'w3'), 'w3 on stdout');
    const out = stdoutEvents(gw).filter((e) => e.id.startsWith('w'));
    assert.deepEqual(out.map((e) => e.id).sort(), ['w1', 'w3']);
    assert.ok(
      out.every((e) => e.metadata[TENANT] === 'web'),
      "the caller's polku.tenant is overwritten",
    );
    assert.equal(stdoutEvents(gw).filter((e) => e.id.startsWith('nokey')).length, 0);
  });

  test('SendEvent: UNAUTHENTICATED and PERMISSION_DENIED fail the call with those statuses', async () => {
    const none = (await sendEvent(client, undefined, 'web', 's1')) as grpc.ServiceError;
    assert.equal(none.code, grpc.status.UNAUTHENTICATED);
    assert.match(none.details, /an API key is required/);
    const wrong = (await sendEvent(client, 'nope', 'web', 's2')) as grpc.ServiceError;
    assert.equal(wrong.code, grpc.status.UNAUTHENTICATED);
    assert.match(wrong.details, /unknown API key/);
    const forbidden = (await sendEvent(client, WEB_KEY, 'billing', 's3')) as grpc.ServiceError;
    assert.equal(forbidden.code, grpc.status.PERMISSION_DENIED);
    const ok = (await sendEvent(client, WEB_KEY, 'web', 's4')) as WireAck;
    assert.deepEqual(ok.event_ids, ['s4']);
  });

  test('OTLP/gRPC, the OpenTelemetry exporter: with metadata x-api-key the records arrive as the tenant; without, none do', async () => {
    const before = count(await scrape(gw.metricsPort), 'polku_tenant_requests_total{tenant="_other"}');
    // The exporter's own way to send gRPC metadata: a Metadata it adds to every Export.
    const provider = (service: string, key?: string) =>
      new LoggerProvider({
        resource: resourceFromAttributes({ 'service.name': service }),
        processors: [
          new BatchLogRecordProcessor({
            exporter: new GrpcLogExporter({ url: `http://127.0.0.1:${gw.otlpGrpc}`, ...(key ? { metadata: withKey(key) } : {}) }),
            scheduledDelayMillis: 20,
          }),
        ],
      });
    const keyed = provider('checkout', WEB_KEY);
    for (let i = 0; i < 10; i++) keyed.getLogger('l').emit({ body: `otlp ${i}` });
    await keyed.forceFlush();
    await until(() => stdoutEvents(gw).filter((e) => e.source === 'checkout').length >= 10, '10 OTLP records on stdout', 15_000);
    await keyed.shutdown();
    const otlp = stdoutEvents(gw).filter((e) => e.source === 'checkout');
    assert.equal(otlp.length, 10);
    assert.ok(otlp.every((e) => e.metadata[TENANT] === 'web'));

    const bare = provider('checkout-nokey');
    for (let i = 0; i < 5; i++) bare.getLogger('l').emit({ body: `bare ${i}` });
    await bare.forceFlush();
    await until(
      async () => count(await scrape(gw.metricsPort), 'polku_tenant_requests_total{tenant="_other"}') > before,
      'the keyless Export counted under _other',
      15_000,
    );
    await bare.shutdown();
    const text = await scrape(gw.metricsPort);
    assert.equal(count(text, 'polku_tenant_requests_total{tenant="_other"}') - before, 1, 'one Export, not retried (UNAUTHENTICATED)');
    assert.equal(count(text, 'polku_otlp_requests_total{transport="grpc",result="refused"}') >= 1, true);
    assert.equal(stdoutEvents(gw).filter((e) => e.source === 'checkout-nokey').length, 0);
  });

  test('OTLP/HTTP: X-API-Key decides, 401 without it', async () => {
    const body = (service: string) =>
      JSON.stringify({
        resourceLogs: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
            scopeLogs: [{ logRecords: [{ body: { stringValue: 'over http' } }] }],
          },
        ],
      });
    const post = (service: string, key?: string) =>
      fetch(`http://127.0.0.1:${gw.otlpHttp}/v1/logs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}) },
        body: body(service),
      });
    const none = await post('web');
    assert.equal(none.status, 401);
    const ok = await post('web', WEB_KEY);
    assert.equal(ok.status, 200);
    await until(() => stdoutEvents(gw).some((e) => e.source === 'web' && e.payload === 'over http'), 'the HTTP record on stdout');
    assert.equal(stdoutEvents(gw).filter((e) => e.payload === 'over http').length, 1);
  });

  test("PORTTI StreamK8sEvents: no key ends the stream UNAUTHENTICATED; the tenant's key is accepted", async () => {
    const portti = porttiClient(gw.grpcPort);
    try {
      const refused = new AnswerStream<WirePorttiAck>(portti['StreamK8sEvents'](withKey(undefined)));
      await assert.rejects(refused.send({ events: porttiEvents('k0') }), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.UNAUTHENTICATED);
        return true;
      });
      const keyed = new AnswerStream<WirePorttiAck>(portti['StreamK8sEvents'](withKey(AGENTS_KEY)));
      const sent = porttiEvents('k1');
      const ack = await keyed.send({ events: sent });
      await keyed.end();
      assert.equal(ack.event_ids.length, sent.length);
      await until(() => stdoutEvents(gw).filter((e) => ack.event_ids.includes(e.id)).length === sent.length, 'PORTTI events on stdout');
      assert.ok(
        stdoutEvents(gw)
          .filter((e) => ack.event_ids.includes(e.id))
          .every((e) => e.metadata[TENANT] === 'agents'),
      );
    } finally {
      portti.close();
    }
  });

  test('a noisy tenant at 10× its quota is refused RATE_LIMITED while a quiet tenant gets every event in', async () => {
    const noisy = stream(client, NOISY_KEY);
    const quiet = stream(client, QUIET_KEY);
    const started = Date.now();
    const noisyAcks = Array.from({ length: 10 }, (_, b) =>
      noisy.send({ source: 'noisy', events: { events: events(100, (i) => ({ id: `n${b}-${i}` })) } }),
    );
    const quietAcks = Array.from({ length: 5 }, (_, b) =>
      quiet.send({ source: 'quiet', events: { events: events(8, (i) => ({ id: `q${b}-${i}` })) } }),
    );
    const [n, q] = [await Promise.all(noisyAcks), await Promise.all(quietAcks)];
    const elapsedS = (Date.now() - started) / 1000;
    await noisy.end();
    await quiet.end();
    const noisyAccepted = n.reduce((a, ack) => a + ack.event_ids.length, 0);
    const limited = n.flatMap((ack) => ack.errors).filter((e) => e.code === 'RATE_LIMITED');
    assert.equal(noisyAccepted + limited.length, 1000, 'every noisy event accepted or RATE_LIMITED');
    assert.ok(noisyAccepted <= 100 + Math.ceil(100 * elapsedS), `at most burst + rate × ${elapsedS}s accepted, got ${noisyAccepted}`);
    assert.ok(limited.length >= 800, `most refused, got ${limited.length}`);
    assert.match(limited[0]!.message, /tenant "noisy" is over its quota \(100\/s, burst 100\); retry after \d+ ms/);
    assert.equal(
      q.reduce((a, ack) => a + ack.event_ids.length, 0),
      40,
      'all of the quiet tenant accepted',
    );
    await until(() => stdoutEvents(gw).filter((e) => e.id.startsWith('q')).length === 40, 'the quiet tenant delivered');
    const text = await scrape(gw.metricsPort);
    assert.equal(count(text, 'polku_tenant_quota_refusals_total{tenant="noisy"}'), limited.length);
    assert.equal(count(text, 'polku_tenant_events_total{tenant="noisy",outcome="rate_limited"}'), limited.length);
    assert.equal(count(text, 'polku_tenant_events_total{tenant="quiet",outcome="accepted"}'), 40);
    assert.equal(count(text, 'polku_tenant_quota_refusals_total{tenant="quiet"}'), 0);
  });

  test('a key rotated by rewriting the file: the old one refused, the new one accepted, no restart; a bad file keeps the table', async () => {
    // Written beside, then renamed over: how a Secret volume or an editor replaces a file.
    const replace = (text: string): void => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    replace(JSON.stringify(table(WEB_KEY_ROTATED)));
    await gw.line(/"tenants file reloaded"/, 10_000);
    const old = stream(client, WEB_KEY);
    const refused = await old.send({ source: 'web', events: { events: events(1, () => ({ id: 'rot-old' })) } });
    await old.end();
    assert.equal(refused.errors[0]!.code, 'UNAUTHENTICATED');
    const next = stream(client, WEB_KEY_ROTATED);
    const accepted = await next.send({ source: 'web', events: { events: events(1, () => ({ id: 'rot-new' })) } });
    assert.deepEqual(accepted.event_ids, ['rot-new']);

    replace('{"tenants":[{"name":"web","apiKeys":["sha256:zz"],"sources":["web"],"rate":1}]}');
    await gw.line(/"tenants file invalid; the tenant table in force is kept"/, 10_000);
    const still = await next.send({ source: 'web', events: { events: events(1, () => ({ id: 'rot-kept' })) } });
    await next.end();
    assert.deepEqual(still.event_ids, ['rot-kept'], 'the table in force still holds');
    const text = await scrape(gw.metricsPort);
    assert.equal(count(text, 'polku_tenants_reloads_total{result="ok"}'), 1);
    assert.ok(count(text, 'polku_tenants_reloads_total{result="failed"}') >= 1);
  });
});

describe('tenants from the pipeline module, and none at all', () => {
  test('.tenants([...]) in the module: its key is needed and works', async () => {
    const gw = await servePolku(['--config', 'test/fixtures/tenants.config.ts']);
    const client = protoOnlyClient(gw.grpcPort);
    try {
      await gw.line(/tenants configured/);
      const none = (await sendEvent(client, undefined, 'web', 'm0')) as grpc.ServiceError;
      assert.equal(none.code, grpc.status.UNAUTHENTICATED);
      const ok = (await sendEvent(client, 'module-key', 'web', 'm1')) as WireAck;
      assert.deepEqual(ok.event_ids, ['m1']);
      await until(() => stdoutEvents(gw).some((e) => e.id === 'm1'), 'm1 on stdout');
      assert.equal(stdoutEvents(gw).find((e) => e.id === 'm1')!.metadata[TENANT], 'mod');
    } finally {
      client.close();
      await stop(gw);
    }
  });

  test('no tenants: one implicit tenant, said at start; no key needed; metadata as sent', async () => {
    const gw = await servePolku([]);
    const client = protoOnlyClient(gw.grpcPort);
    try {
      await gw.line(/no tenants configured: one implicit tenant/);
      const s = stream(client, undefined);
      const ack = await s.send({ source: 'web', events: { events: [{ id: 'i1', event_type: 't', metadata: { [TENANT]: 'as-sent' } }] } });
      await s.end();
      assert.deepEqual(ack.event_ids, ['i1']);
      await until(() => stdoutEvents(gw).some((e) => e.id === 'i1'), 'i1 on stdout');
      assert.equal(stdoutEvents(gw).find((e) => e.id === 'i1')!.metadata[TENANT], 'as-sent');
    } finally {
      client.close();
      await stop(gw);
    }
  });
});
