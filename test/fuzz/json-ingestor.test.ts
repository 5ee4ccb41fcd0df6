import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { JsonIngestor } from '../../src/ingest/json.js';
import type { IngestResult } from '../../src/ingest/ingestor.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../src/ingest/intake-rules.js';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { fuzzRuns } from './runs.js';

const ingestor = new JsonIngestor();
const runs = { numRuns: fuzzRuns() };

function ingest(data: Uint8Array, format: string, limits: Partial<IntakeLimits> = {}): IngestResult {
  const result = ingestor.ingest({ source: 's', cluster: 'c', format, limits: { ...DEFAULT_LIMITS, ...limits } }, data);
  assert.ok(!(result instanceof Promise));
  return result;
}

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
/** Lines of NDJSON that are elements: any byte that is not JSON whitespace. */
function elementLines(data: Uint8Array): number {
  let n = 0;
  let blank = true;
  for (const c of data) {
    if (c === 0x0a) {
      if (!blank) n++;
      blank = true;
    } else if (!isSpace(c)) blank = false;
  }
  return blank ? n : n + 1;
}

/** An event as the test compares it: plain values only. */
const plain = (e: Event) => ({
  id: e.id,
  ts: e.timestampUnixNs,
  source: e.source,
  eventType: e.eventType,
  metadata: Object.entries(e.metadata),
  payload: Buffer.from(e.payload).toString('hex'),
  routeTo: e.routeTo,
});

/** A generated event: its JSON text and the event a faithful reader makes of it. */
interface Generated {
  text: string;
  expected: ReturnType<typeof plain>;
}

const jsonValue = fc.jsonValue({ maxDepth: 4 });
const generated: fc.Arbitrary<Generated> = fc
  .record(
    {
      id: fc.string({ unit: 'grapheme', maxLength: 12 }),
      ts: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      source: fc.string({ maxLength: 8 }),
      type: fc.string({ maxLength: 8 }),
      metadata: fc.dictionary(fc.string({ maxLength: 6 }), jsonValue, { maxKeys: 4 }),
      payload: jsonValue,
      routeTo: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
      space: fc.constantFrom('', ' ', '\t', ' \r '),
    },
    { requiredKeys: ['space'] },
  )
  .map((g) => {
    const members: string[] = [];
    const add = (k: string, text: string) => members.push(`${JSON.stringify(k)}${g.space}:${g.space}${text}`);
    if (g.id !== undefined) add('id', JSON.stringify(g.id));
    if (g.ts !== undefined) add('timestamp_unix_ns', g.ts.toString());
    if (g.source !== undefined) add('source', JSON.stringify(g.source));
    if (g.type !== undefined) add('event_type', JSON.stringify(g.type));
    if (g.metadata !== undefined) add('metadata', JSON.stringify(g.metadata));
    if (g.payload !== undefined) add('payload', JSON.stringify(g.payload));
    if (g.routeTo !== undefined) add('route_to', JSON.stringify(g.routeTo));
    // The reference: JSON.parse is exact on JSON.stringify's own text, and the timestamp is known.
    const metadata = g.metadata === undefined ? {} : (JSON.parse(JSON.stringify(g.metadata)) as Record<string, unknown>);
    const payload =
      g.payload === undefined || g.payload === null ? '' : typeof g.payload === 'string' ? g.payload : JSON.stringify(g.payload);
    return {
      text: `{${g.space}${members.join(`,${g.space}`)}${g.space}}`,
      expected: {
        id: g.id ?? '',
        ts: g.ts ?? 0n,
        source: g.source ?? '',
        eventType: g.type ?? '',
        metadata: Object.entries(metadata).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)] as [string, string]),
        payload: Buffer.from(payload, 'utf8').toString('hex'),
        routeTo: g.routeTo ?? [],
      },
    };
  });

test('arbitrary bytes never throw, and every NDJSON line is an event or a problem', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom('ndjson', 'json', ''), (data, format) => {
      const r = ingest(data, format);
      assert.equal(r.tooLarge, undefined);
      if (format === 'ndjson') assert.equal(r.events.length + r.problems.length, elementLines(data));
      // An empty array is a valid batch of no events: nothing to accept, nothing to refuse.
      else if (!/^[ \t\r\n]*\[[ \t\r\n]*\][ \t\r\n]*$/.test(Buffer.from(data).toString('latin1')))
        assert.ok(r.events.length + r.problems.length >= (elementLines(data) > 0 ? 1 : 0));
      for (const p of r.problems) assert.ok(p.offset === undefined || (p.offset >= 0 && p.offset <= data.length));
    }),
    runs,
  );
});

test('arbitrary JSON text (fc.json) never throws; a lone object is one event or one problem', () => {
  fc.assert(
    fc.property(fc.json({ maxDepth: 6 }), (text) => {
      const r = ingest(Buffer.from(text), 'ndjson');
      assert.equal(r.events.length + r.problems.length, 1);
      if (!text.startsWith('{')) assert.match(r.problems[0]!.message, /an event must be a JSON object/);
    }),
    runs,
  );
});

test('generated events come out equal to the reference, as NDJSON and as an array', () => {
  fc.assert(
    fc.property(fc.array(generated, { minLength: 1, maxLength: 8 }), (gen) => {
      const expected = gen.map((g) => g.expected);
      const lines = ingest(Buffer.from(gen.map((g) => g.text).join('\n')), 'ndjson');
      assert.deepEqual(lines.problems, []);
      assert.deepEqual(lines.events.map(plain), expected);
      const array = ingest(Buffer.from(`[${gen.map((g) => g.text).join(',\n')}]`), 'json');
      assert.deepEqual(array.problems, []);
      assert.deepEqual(array.events.map(plain), expected);
    }),
    runs,
  );
});

test('one mutated byte costs at most its own line; the other lines are accepted unchanged', () => {
  fc.assert(
    fc.property(
      fc.array(generated, { minLength: 2, maxLength: 6 }),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x0a),
      (gen, which, where, byte) => {
        const lines = gen.map((g) => Buffer.from(g.text));
        const l = which % lines.length;
        lines[l]![where % lines[l]!.length] = byte;
        const r = ingest(Buffer.concat(lines.flatMap((b) => [b, Buffer.from('\n')])), 'ndjson');
        assert.equal(r.events.length + r.problems.length, lines.length);
        assert.ok(r.problems.length <= 1);
        if (r.problems.length === 1) assert.match(r.problems[0]!.message, new RegExp(`^line ${l + 1}: `));
        const others = r.events.map(plain).filter((_, i) => r.problems.length === 1 || i !== l);
        assert.deepEqual(
          others,
          gen.map((g) => g.expected).filter((_, i) => i !== l),
        );
      },
    ),
    runs,
  );
});

test('invalid UTF-8 in some lines refuses exactly those lines', () => {
  const invalid = fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xe2, 0x28, 0xa1], [0x80]);
  fc.assert(
    fc.property(fc.array(fc.tuple(generated, fc.option(invalid)), { minLength: 1, maxLength: 8 }), (rows) => {
      const body = Buffer.concat(
        rows.flatMap(([g, bad]) => {
          // The bad bytes go into a member name, so the line is JSON but for its UTF-8.
          const line = bad
            ? Buffer.concat([Buffer.from('{"'), Buffer.from(bad), Buffer.from(`":1,${g.text.slice(1)}`)])
            : Buffer.from(g.text);
          return [line, Buffer.from('\n')];
        }),
      );
      const r = ingest(body, 'ndjson');
      const badLines = rows.flatMap(([, bad], i) => (bad ? [i + 1] : []));
      assert.deepEqual(
        r.problems.map((p) => p.message.split(':')[0]),
        badLines.map((n) => `line ${n}`),
      );
      for (const p of r.problems) assert.match(p.message, /not valid UTF-8/);
      assert.deepEqual(
        r.events.map(plain),
        rows.filter(([, bad]) => !bad).map(([g]) => g.expected),
      );
    }),
    runs,
  );
});

test('the depth limit holds: accepted up to maxJsonDepth, refused past it, alone', () => {
  fc.assert(
    fc.property(fc.array(fc.boolean(), { minLength: 0, maxLength: 40 }), fc.integer({ min: 1, max: 40 }), (kinds, maxJsonDepth) => {
      // The event object is level 1; each kind adds an array or an object around the innermost 0.
      const nested = kinds.reduceRight((inner, isArray) => (isArray ? `[${inner}]` : `{"k":${inner}}`), '0');
      const depth = 1 + kinds.length;
      const body = Buffer.from(`{"id":"a"}\n{"payload":${nested}}\n{"id":"c"}`);
      const r = ingest(body, 'ndjson', { maxJsonDepth });
      assert.equal(r.events.length + r.problems.length, 3);
      if (depth <= maxJsonDepth) {
        assert.equal(r.problems.length, 0);
        assert.equal(Buffer.from(r.events[1]!.payload).toString(), nested);
      } else {
        assert.equal(r.problems.length, 1);
        assert.match(r.problems[0]!.message, new RegExp(`^line 2: nesting deeper than ${maxJsonDepth} \\(limit POLKU_MAX_JSON_DEPTH\\)`));
      }
    }),
    runs,
  );
});

test('the count limit holds: more elements than maxBatchEvents is too large, as lines or as an array', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 1, max: 100 }), fc.boolean(), (count, maxBatchEvents, asArray) => {
      const body = asArray ? `[${Array(count).fill('{"id":"x"}').join(',')}]` : '{"id":"x"}\n'.repeat(count);
      const r = ingest(Buffer.from(body), asArray ? 'json' : 'ndjson', { maxBatchEvents });
      if (count > maxBatchEvents) {
        assert.match(r.tooLarge ?? '', new RegExp(`limit POLKU_MAX_BATCH_EVENTS=${maxBatchEvents}\\)`));
        assert.equal(r.events.length, 0);
      } else {
        assert.equal(r.tooLarge, undefined);
        assert.equal(r.events.length, count);
      }
    }),
    runs,
  );
});
