import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IngestorTable } from '../../src/ingest/ingestor-table.js';
import type { Ingestor } from '../../src/ingest/ingestor.js';
import { PolkuError } from '../../src/errors.js';

function stub(name: string, claims: { sources?: string[]; formats?: string[] } = {}): Ingestor {
  return { name, ...claims, ingest: () => ({ events: [], problems: [] }) };
}

const pipelineInvalid = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof PolkuError, 'throws a PolkuError');
  assert.equal(err.code, 'POLKU_ERR_PIPELINE_INVALID');
  assert.match(err.message, pattern);
  return true;
};

const json = stub('json', { formats: ['json', 'ndjson'] });
const edge = stub('edge', { sources: ['edge-agent'], formats: ['csv'] });
const fallback = stub('fallback');

test('a source claim beats a format claim', () => {
  const table = new IngestorTable([json, edge]);
  assert.equal(table.select('edge-agent', 'json'), edge);
});

test('the format is used when no ingestor claims the source', () => {
  const table = new IngestorTable([json, edge]);
  assert.equal(table.select('someone-else', 'ndjson'), json);
  assert.equal(table.select('someone-else', 'csv'), edge);
});

test('the format hint is compared case-insensitively, both ways', () => {
  const table = new IngestorTable([json, stub('upper', { formats: ['Application/X-Thing'] })]);
  assert.equal(table.select('s', 'JSON'), json);
  assert.equal(table.select('s', 'NdJsOn'), json);
  assert.equal(table.select('s', 'application/x-thing')?.name, 'upper');
});

test('the first ingestor to claim a format keeps it', () => {
  const mine = stub('mine', { formats: ['JSON'] });
  const table = new IngestorTable([mine, json]);
  assert.equal(table.select('s', 'json'), mine);
});

test('the default ingestor is used last: after source and format found nothing', () => {
  const table = new IngestorTable([json, edge, fallback], 'fallback');
  assert.equal(table.select('unknown', 'unknown-format'), fallback);
  assert.equal(table.select('unknown', ''), fallback);
  assert.equal(table.select('unknown', 'json'), json, 'a format match still wins over the default');
  assert.equal(table.select('edge-agent', ''), edge, 'a source match still wins over the default');
});

test('an unknown source and format with no default select nothing', () => {
  const table = new IngestorTable([json, edge]);
  assert.equal(table.select('unknown', 'xml'), undefined);
  assert.equal(table.select('unknown', ''), undefined);
});

test('all lists the ingestors in the order given', () => {
  assert.deepEqual(new IngestorTable([json, edge, fallback]).all, [json, edge, fallback]);
});

test('two ingestors claiming one source throw POLKU_ERR_PIPELINE_INVALID naming both', () => {
  const other = stub('other', { sources: ['edge-agent'] });
  assert.throws(() => new IngestorTable([edge, other]), pipelineInvalid(/"edge-agent".*"edge".*"other"/));
});

test('two ingestors with the same name throw POLKU_ERR_PIPELINE_INVALID', () => {
  assert.throws(() => new IngestorTable([json, stub('json')]), pipelineInvalid(/two ingestors are named "json"/));
});

test('a default ingestor that is not among the ingestors throws POLKU_ERR_PIPELINE_INVALID', () => {
  assert.throws(() => new IngestorTable([json, edge], 'nope'), pipelineInvalid(/default ingestor "nope".*json, edge/));
  assert.throws(() => new IngestorTable([], 'nope'), pipelineInvalid(/\(none\)/));
});

describe("upstream's source names with no format hint", () => {
  const seen: string[] = [];
  const recording = (name: string, formats: string[]): Ingestor => ({
    name,
    formats,
    ingest: (ctx) => (seen.push(`${name}:${ctx.format}`), { events: [], problems: [] }),
  });
  const jsonIngestor = recording('json', ['json', 'ndjson', 'jsonl']);
  const passthrough = recording('passthrough', ['protobuf', 'passthrough']);

  test('json, json-lines, ndjson, passthrough and polku reach the ingestor of their format, told that format', () => {
    const table = new IngestorTable([jsonIngestor, passthrough]);
    seen.length = 0;
    for (const source of ['json', 'json-lines', 'ndjson', 'passthrough', 'polku']) {
      const chosen = table.select(source, '');
      assert.ok(chosen, `source ${source} selects an ingestor`);
      void chosen.ingest({ source, cluster: '', format: '' }, new Uint8Array());
    }
    assert.deepEqual(seen, ['json:json', 'json:ndjson', 'json:ndjson', 'passthrough:passthrough', 'passthrough:protobuf']);
  });

  test('a source an ingestor claims still wins; a format hint is used as sent', () => {
    const mine = stub('mine', { sources: ['json'] });
    const table = new IngestorTable([jsonIngestor, passthrough, mine]);
    assert.equal(table.select('json', ''), mine);
    assert.equal(table.select('ndjson', 'protobuf'), passthrough, 'a hint wins over the source name');
    assert.equal(table.select('polku', 'xml'), undefined, 'an unknown hint is not rescued by the source name');
  });

  test('a name whose format no ingestor claims selects nothing; other sources stay unknown', () => {
    const table = new IngestorTable([passthrough]);
    assert.equal(table.select('json', ''), undefined);
    assert.equal(table.select('polku', '')?.name, 'passthrough');
    assert.equal(table.select('jsonl', ''), undefined, 'only the five names upstream documents');
  });

  test('the UNKNOWN_SOURCE message lists the formats, sources and upstream names that work', () => {
    const table = new IngestorTable([jsonIngestor, passthrough, edge]);
    assert.equal(
      table.unknownSourceMessage('nginx', ''),
      'no ingestor for source "nginx" (and no format hint); these work: formats: json, ndjson, jsonl, protobuf, passthrough, csv; ' +
        'sources: edge-agent; upstream source names (with no format): json, json-lines, ndjson, passthrough, polku',
    );
    assert.match(table.unknownSourceMessage('nginx', 'xml'), /^no ingestor for source "nginx" or format "xml"; these work/);
  });
});
