// The chart's default memory limit is a measured figure: values.yaml cites the bench that
// measured it, and docs/benchmarks.md ("Footprint", "Under the chart's limits") records a
// full-speed run at exactly that limit whose peak stayed within 70 % of it. Changing the limit
// without measuring again fails here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helm.js';

const values = readFileSync(join(ROOT, 'charts', 'polku', 'values.yaml'), 'utf8');
const doc = readFileSync(join(ROOT, 'docs', 'benchmarks.md'), 'utf8');

function chartLimitMi(): number {
  const m = /^resources:\n(?:[ #].*\n)*? {2}limits:\n(?: {4}.*\n)*? {4}memory: (\d+)Mi$/m.exec(values);
  assert.ok(m, 'values.yaml: resources.limits.memory in Mi');
  return Number(m[1]);
}

test("values.yaml's resources comment cites the measurement (npm run bench:footprint)", () => {
  const comment = values.slice(values.lastIndexOf('\n\n', values.indexOf('\nresources:\n')), values.indexOf('\nresources:\n'));
  assert.match(comment, /npm run bench:footprint/);
  assert.match(comment, /docs\/benchmarks\.md/);
});

test("docs/benchmarks.md records a full-speed run at the chart's limit within 70 % of it", () => {
  const limit = chartLimitMi();
  const section = doc.slice(doc.indexOf("### Under the chart's limits"));
  assert.ok(section.length > 0, 'docs/benchmarks.md has an "Under the chart\'s limits" section');
  const row = section.split('\n').find((l) => l.startsWith(`| ${limit}Mi (now)`));
  assert.ok(row, `a row for the chart's ${limit}Mi limit`);
  const cells = row.split('|').map((c) => c.trim());
  assert.equal(cells[2], String(Math.floor(limit / 2)), '--max-old-space-size is half the limit (nodeOptions.heapPercent 50)');
  const shares = [...cells[4]!.matchAll(/(\d+) %/g)].map((m) => Number(m[1]));
  assert.ok(shares.length > 0 && shares.every((s) => s <= 70), `every recorded share within 70 %: ${cells[4]}`);
  const peaks = [...cells[3]!.matchAll(/([\d.]+) MB/g)].map((m) => Number(m[1]));
  for (const peak of peaks) assert.ok(peak / ((limit * 1048576) / 1e6) <= 0.7, `${peak} MB within 70 % of ${limit}Mi`);
});
