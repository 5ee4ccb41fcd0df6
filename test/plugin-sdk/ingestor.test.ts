import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { Event, Severity } from '../../src/gen/polku/v1/event.js';
import {
  IngestorPluginClient,
  PluginType,
  type IngestRequest,
  type IngestResponse,
  type PluginHealthResponse,
  type PluginInfo,
} from '../../src/gen/polku/v1/plugin.js';
import { serveIngestor, type IngestContext, type IngestorPluginOptions } from '../../src/plugin/index.js';

type TestContext = { after(fn: () => unknown): void };
type Callback<T> = (err: ServiceError | null, res: T) => void;

/** A unary call as a promise. The deadline only guards against a broken server hanging the run. */
function unary<T>(invoke: (md: Metadata, opts: { deadline: Date }, cb: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    invoke(new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

/** An ingestor on a free port plus a real generated client; both cleaned up after the test. */
async function start(t: TestContext, options: Partial<IngestorPluginOptions> = {}) {
  const server = await serveIngestor({ name: 'test-ingestor', sources: ['csv'], host: '127.0.0.1', ingest: () => [], ...options });
  const client = new IngestorPluginClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
  t.after(async () => {
    client.close();
    await server.close();
  });
  return {
    server,
    info: () => unary<PluginInfo>((md, o, cb) => client.info({}, md, o, cb)),
    health: () => unary<PluginHealthResponse>((md, o, cb) => client.health({}, md, o, cb)),
    ingest: (req: Partial<IngestRequest>) =>
      unary<IngestResponse>((md, o, cb) =>
        client.ingest({ source: 'csv', cluster: '', format: '', data: new Uint8Array(0), ...req }, md, o, cb),
      ),
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);

test('Info reports an INGESTOR with its sources; Health is healthy by default', async (t) => {
  const p = await start(t, { name: 'csv-ingestor', sources: ['csv', 'tsv'], version: '0.1.0' });
  assert.deepEqual(await p.info(), {
    name: 'csv-ingestor',
    version: '0.1.0',
    type: PluginType.PLUGIN_TYPE_INGESTOR,
    description: '',
    sources: ['csv', 'tsv'],
    emitterName: '',
    capabilities: [],
  });
  assert.deepEqual(await p.health(), { healthy: true, message: 'ok', components: {} });
});

test('Ingest passes the bytes and the source, cluster and format to ingest()', async (t) => {
  const seen: Array<{ text: string; ctx: IngestContext }> = [];
  const p = await start(t, {
    ingest: (data, ctx) => {
      seen.push({ text: new TextDecoder().decode(data), ctx });
      return [];
    },
  });
  await p.ingest({ source: 'csv', cluster: 'prod-eu', format: 'text/csv', data: bytes('a,b\n1,2\n') });
  assert.deepEqual(seen, [{ text: 'a,b\n1,2\n', ctx: { source: 'csv', cluster: 'prod-eu', format: 'text/csv' } }]);
});

test('partial events come back filled with defaults, and bigint and number timestamps survive', async (t) => {
  const p = await start(t, {
    ingest: () => [
      { eventType: 'csv.row', metadata: { name: 'ada' } },
      { id: 'r2', timestampUnixNs: 1_700_000_000_123_456_789n, severity: Severity.SEVERITY_ERROR, routeTo: ['slack'] },
      { id: 'r3', timestampUnixNs: 1_700_000_000_000, payload: bytes('{"x":1}') },
    ],
  });
  const res = await p.ingest({ data: bytes('ignored') });
  assert.deepEqual(res.errors, []);
  assert.equal(res.events.length, 3);
  assert.deepEqual(
    { ...res.events[0]!, payload: [...res.events[0]!.payload] },
    {
      ...Event.fromPartial({}),
      eventType: 'csv.row',
      metadata: { name: 'ada' },
      payload: [],
    },
  );
  assert.equal(res.events[1]!.timestampUnixNs, 1_700_000_000_123_456_789n);
  assert.equal(res.events[1]!.severity, Severity.SEVERITY_ERROR);
  assert.deepEqual(res.events[1]!.routeTo, ['slack']);
  assert.equal(res.events[1]!.source, '');
  assert.equal(res.events[2]!.timestampUnixNs, 1_700_000_000_000n);
  assert.equal(new TextDecoder().decode(res.events[2]!.payload), '{"x":1}');
});

test('errors returned beside events become IngestErrors with details and offset; no offset is sent as -1 (unknown)', async (t) => {
  const p = await start(t, {
    ingest: () => ({
      events: [{ id: 'ok-1' }],
      errors: [{ message: 'row 3 has 4 columns, header has 3', details: '1,2,3,4', offset: 42 }, { message: 'trailing garbage' }],
    }),
  });
  const res = await p.ingest({ data: bytes('x') });
  assert.deepEqual(
    res.events.map((e) => e.id),
    ['ok-1'],
  );
  assert.deepEqual(res.errors, [
    { message: 'row 3 has 4 columns, header has 3', details: '1,2,3,4', offset: 42n },
    { message: 'trailing garbage', details: '', offset: -1n },
  ]);
});

test('a throwing ingest answers one IngestError with its message, and the plugin keeps serving', async (t) => {
  let calls = 0;
  const p = await start(t, {
    ingest: async () => {
      calls++;
      if (calls === 1) throw new Error('not UTF-8');
      return [{ id: 'fine' }];
    },
  });
  assert.deepEqual(await p.ingest({ data: bytes('\xff') }), { events: [], errors: [{ message: 'not UTF-8', details: '', offset: -1n }] });
  assert.deepEqual(
    (await p.ingest({ data: bytes('ok') })).events.map((e) => e.id),
    ['fine'],
  );
});

test('an event that cannot be encoded becomes an IngestError naming it; the other events still go back', async (t) => {
  const p = await start(t, {
    ingest: () => [
      { id: 'good' },
      { id: 'bad-ts', timestampUnixNs: 1.5 },
      { id: 'huge-ts', timestampUnixNs: 2n ** 64n },
      { id: 'also-good' },
    ],
  });
  const res = await p.ingest({ data: bytes('x') });
  assert.deepEqual(
    res.events.map((e) => e.id),
    ['good', 'also-good'],
  );
  assert.equal(res.errors.length, 2);
  assert.match(res.errors[0]!.message, /^event 1 is not valid/);
  assert.match(res.errors[1]!.message, /^event 2 is not valid: timestampUnixNs does not fit in int64/);
});

test('serveIngestor refuses options without sources or an ingest function', async () => {
  await assert.rejects(serveIngestor({ name: 'x', sources: [], ingest: () => [] }), /sources/);
  await assert.rejects(serveIngestor({ name: 'x', sources: [''], ingest: () => [] }), /sources/);
  await assert.rejects(serveIngestor({ name: 'x', sources: ['csv'] } as unknown as IngestorPluginOptions), /ingest\(data, ctx\)/);
});
