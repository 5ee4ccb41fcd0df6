// The Go example ingestor plugin (examples/plugins/go/csv_ingestor.go), built offline the way its
// README says (build.sh: grpc_tools' protoc + apt's protoc-gen-go/-go-grpc, GOPATH mode against
// /usr/share/gocode). First the plugin alone over grpc-js (Info, Health, Ingest), then behind a
// real `polku serve` process whose pipeline (test/fixtures/examples-go.config.ts) sends raw
// `csv` batches to it and writes the resulting events to a file.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import {
  IngestorPluginClient,
  PluginType,
  type IngestRequest,
  type IngestResponse,
  type PluginHealthResponse,
  type PluginInfo,
} from '../../src/gen/polku/v1/plugin.js';
import { AckStream, protoOnlyClient } from '../helpers/gateway-harness.js';
import { until } from '../fixtures/plugin-process.js';
import { killAll, startProcess, track, type LineProcess } from '../helpers/line-process.js';
import { ROOT, servePolku } from '../helpers/polku-process.js';
import { runSetupScript as script } from '../helpers/setup-script.js';
import { jsonLines, LISTENING, unary } from './example-helpers.js';

const BINARY = join(ROOT, 'examples/plugins/go/.build/csv-ingestor');
const dir = mkdtempSync(join(tmpdir(), 'polku-example-go-'));

/** Starts the plugin on a free loopback port; resolves once it logged where it listens. */
async function startIngestor(): Promise<LineProcess & { address: string }> {
  const p = startProcess(BINARY, ['--host', '127.0.0.1', '--port', '0']);
  const m = await p.line(LISTENING);
  return Object.assign(p, { address: `127.0.0.1:${m[1]}` });
}

/** `polku serve --config <config>` on free loopback ports, killed by `after` if a test fails. */
const serve = async (config: string, env: Record<string, string>) => track(await servePolku(['--config', config], env));

/** Byte offset in `text` (UTF-8) where `needle` starts. */
const byteOffset = (text: string, needle: string): number => {
  const at = text.indexOf(needle);
  assert.ok(at >= 0, `${needle} in the test input`);
  return Buffer.byteLength(text.slice(0, at));
};

before(
  async () => {
    // Installs apt's Go toolchain, grpc/protobuf Go sources and code generators when missing (a
    // failure names them), then generates the stubs and builds the binary.
    await script('scripts/install-plugin-toolchains.sh', ['go']);
    await script('examples/plugins/go/build.sh');
  },
  { timeout: 600_000 },
);

after(killAll);

describe('Go example CSV ingestor plugin, called directly', () => {
  let plugin: LineProcess & { address: string };
  let client: IngestorPluginClient;

  before(async () => {
    plugin = await startIngestor();
    client = new IngestorPluginClient(plugin.address, credentials.createInsecure());
  });
  after(() => client.close());

  const ingest = (text: string) =>
    unary<IngestRequest, IngestResponse>((r, cb) => client.ingest(r, cb), {
      source: 'csv',
      cluster: 'c1',
      format: 'csv',
      data: Buffer.from(text),
    });

  test('Info says PLUGIN_TYPE_INGESTOR for sources ["csv"]; Health is healthy', async () => {
    const info = await unary<object, PluginInfo>((r, cb) => client.info(r, cb), {});
    assert.equal(info.type, PluginType.PLUGIN_TYPE_INGESTOR);
    assert.deepEqual(info.sources, ['csv']);
    assert.equal(info.name, 'csv-ingestor');
    const health = await unary<object, PluginHealthResponse>((r, cb) => client.health(r, cb), {});
    assert.equal(health.healthy, true);
  });

  test('Ingest: each row after the header is a csv.row event, columns as metadata, id csv-<row>; bad rows are errors at their byte offset', async () => {
    // A quoted field spanning lines and non-ASCII text before the bad rows: offsets are in bytes.
    const text = 'user,note\nJosé,"line one\nline two"\nbob\n"cy","a ""quoted"", word"\ndee,x,extra\neve,ba"re\nfay,last\n';
    const res = await ingest(text);
    assert.deepEqual(
      res.events.map((e) => [e.id, e.eventType, e.source, e.metadata]),
      [
        ['csv-1', 'csv.row', 'csv', { user: 'José', note: 'line one\nline two' }],
        ['csv-3', 'csv.row', 'csv', { user: 'cy', note: 'a "quoted", word' }],
        ['csv-6', 'csv.row', 'csv', { user: 'fay', note: 'last' }],
      ],
    );
    assert.deepEqual(
      res.errors.map((e) => [e.offset, e.message]),
      [
        [BigInt(byteOffset(text, 'bob')), 'row 2 has 1 fields, the header has 2'],
        [BigInt(byteOffset(text, 'dee')), 'row 4 has 3 fields, the header has 2'],
        [BigInt(byteOffset(text, 'eve')), 'row 5: bare " in non-quoted-field'],
      ],
    );
    assert.equal(byteOffset(text, 'bob'), 36, 'José is 5 bytes');
  });

  test('Ingest: an id column gives the event ids; an empty batch gives nothing', async () => {
    const res = await ingest('id,action\nu-17,signup\n,login\n');
    assert.deepEqual(
      res.events.map((e) => [e.id, e.metadata]),
      [
        ['u-17', { id: 'u-17', action: 'signup' }],
        ['csv-2', { id: '', action: 'login' }],
      ],
    );
    assert.deepEqual(res.errors, []);
    assert.deepEqual(await ingest(''), { events: [], errors: [] });
  });

  test('SIGTERM stops it gracefully: exit 0', async () => {
    plugin.child.kill('SIGTERM');
    assert.deepEqual(await plugin.exited, { code: 0, signal: null });
    assert.ok(plugin.stderr.includes('csv-ingestor: stopped'));
  });
});

describe('Go example CSV ingestor plugin behind a real gateway process', () => {
  let plugin: LineProcess & { address: string };
  let gateway: Awaited<ReturnType<typeof serve>>;
  let client: ReturnType<typeof protoOnlyClient>;
  const sink = join(dir, 'sink.jsonl');
  const received = () => jsonLines(sink);

  before(async () => {
    plugin = await startIngestor();
    gateway = await serve('test/fixtures/examples-go.config.ts', {
      POLKU_TEST_PLUGIN_ADDR: plugin.address,
      POLKU_TEST_SINK: sink,
    });
    client = protoOnlyClient(gateway.grpcPort);
  });
  after(() => client.close());

  test('a raw csv batch: the Ack lists the row events, a bad row is a PARSE_ERROR at its offset, rows reach the emitter with columns as metadata', async () => {
    const text = 'id,user,action\nr1,ada,signup\nbroken\nr2,"grace, hopper",login\n';
    const stream = new AckStream(client);
    const ack = await stream.send({ source: 'csv', raw: { data: Buffer.from(text), format: 'csv' } });
    await stream.end();
    assert.deepEqual(ack.event_ids, ['r1', 'r2']);
    assert.equal(ack.errors.length, 1);
    assert.equal(ack.errors[0]!.code, 'PARSE_ERROR');
    assert.match(ack.errors[0]!.message, /row 2 has 1 fields, the header has 3/);
    assert.match(ack.errors[0]!.message, new RegExp(`at byte ${byteOffset(text, 'broken')}\\b`));
    await until(() => received().length >= 2, 'the two row events in the sink');
    assert.deepEqual(
      received().map((e) => [e['id'], e['source'], e['event_type'], e['metadata']]),
      [
        ['r1', 'csv', 'csv.row', { id: 'r1', user: 'ada', action: 'signup' }],
        ['r2', 'csv', 'csv.row', { id: 'r2', user: 'grace, hopper', action: 'login' }],
      ],
    );
  });
});
