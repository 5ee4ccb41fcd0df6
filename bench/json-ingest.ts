/**
 * How long one JsonIngestor.ingest call holds the event loop, for legitimate batches and for the
 * worst messages up to 4 MiB. Each case runs a few warm-up rounds, then reports the median and
 * the slowest of `--rounds` calls (default 20).
 *
 *   node --import tsx bench/json-ingest.ts [--rounds 20] [--only text] [--module ./src/ingest/json.ts]
 *
 * `--module` points at another copy of the ingestor (an older checkout) to compare the two.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type * as JsonModule from '../src/ingest/json.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const rounds = Number(arg('rounds', '20'));
// Only the cases whose name contains this text (e.g. "event" for the two legitimate batches).
const only = arg('only', '');
const modulePath = resolve(arg('module', 'src/ingest/json.ts'));
const { JsonIngestor } = (await import(pathToFileURL(modulePath).href)) as typeof JsonModule;

const MiB = 1024 * 1024;
const ingestor = new JsonIngestor();
const event = (i: number) =>
  `{"id":"evt-${i}","timestamp_unix_ns":${1732000000123456789n + BigInt(i)},"source":"node-agent",` +
  `"event_type":"k8s.pod.restart","severity":"WARNING","metadata":{"namespace":"default","pod":"web-${i % 50}",` +
  `"restarts":${i % 7}},"payload":{"container":"app","reason":"OOMKilled","exit_code":137,"limits":{"memory":"256Mi"}}}`;

const repeat = (unit: string, bytes: number) => unit.repeat(Math.floor(bytes / unit.length));
const cases: Array<[string, string, Buffer]> = [
  ['10,000-event NDJSON batch', 'ndjson', Buffer.from(Array.from({ length: 10_000 }, (_, i) => event(i)).join('\n'))],
  ['100-event JSON array', 'json', Buffer.from(`[${Array.from({ length: 100 }, (_, i) => event(i)).join(',')}]`)],
  ['4 MiB of "{}\\n" as NDJSON', 'ndjson', Buffer.from(repeat('{}\n', 4 * MiB))],
  ['4 MiB array of {}', 'json', Buffer.from(`[${repeat('{},', 4 * MiB - 8)}{}]`)],
  ['4 MiB of blank lines', 'ndjson', Buffer.from(repeat('\n', 4 * MiB))],
  ['4 MiB nest of [ (one value)', 'json', Buffer.from('['.repeat(4 * MiB))],
  ['5,000-deep nest, 4 MiB of lines', 'ndjson', Buffer.from(repeat(`${'['.repeat(5000)}${']'.repeat(5000)}\n`, 4 * MiB))],
  ['one 4 MiB event', 'json', Buffer.from(JSON.stringify({ payload: 'x'.repeat(4 * MiB - 20) }))],
  ['4 x 1 MiB events, payload of [{},...]', 'ndjson', Buffer.from(repeat(`{"payload":[${repeat('{},', MiB - 40)}{}]}\n`, 4 * MiB))],
];

console.log(`module ${modulePath}, ${rounds} rounds`);
for (const [name, format, data] of cases.filter(([name]) => name.includes(only))) {
  const times: number[] = [];
  let out = '';
  for (let r = 0; r < rounds + 3; r++) {
    const t0 = performance.now();
    const result = ingestor.ingest({ source: 'bench', cluster: 'c', format }, data) as {
      events: unknown[];
      problems: unknown[];
      tooLarge?: string;
    };
    const ms = performance.now() - t0;
    if (r >= 3) times.push(ms);
    out = result.tooLarge ? 'tooLarge' : `${result.events.length} events, ${result.problems.length} problems`;
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  const worst = times[times.length - 1]!;
  console.log(
    `${name.padEnd(40)} ${(data.length / MiB).toFixed(2).padStart(5)} MiB  median ${median.toFixed(2).padStart(7)} ms  max ${worst.toFixed(1).padStart(6)} ms  (${out})`,
  );
}
