import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, runPolku } from '../helpers/polku-process.js';

// test/fixtures/filtering.config.ts: the json ingestor, users-only (drops all but user.*), tag-env
// (adds metadata env=test), an emitter named "memory" that polku test never calls.
const MODULE = 'test/fixtures/filtering.config.ts';
const INPUTS = 'test/fixtures/polku-test/inputs.ndjson';
const NOTES = [
  'note: input line 2: FILTERED: dropped by filter',
  'note: input line 5: PARSE_ERROR: invalid JSON: unexpected "n", wanted a member name in quotes at byte 1 (at byte 0)',
];

describe('polku test MODULE --input --expect', () => {
  test('the pipeline puts out what was expected: PASS, exit 0, refusals noted', async () => {
    const p = runPolku(['test', MODULE, '--input', INPUTS, '--expect', 'test/fixtures/polku-test/expected.ndjson']);
    assert.equal((await p.exited).code, 0, p.stderr.join('\n'));
    assert.deepEqual(p.stdout, [...NOTES, `PASS ${MODULE}: 4 events as expected (${INPUTS} → test/fixtures/polku-test/expected.ndjson)`]);
  });

  test('differences are shown per event and field, with the input line each came from; exit 1', async () => {
    const p = runPolku(['test', MODULE, '--input', INPUTS, '--expect', 'test/fixtures/polku-test/expected-wrong.ndjson']);
    assert.equal((await p.exited).code, 1, p.stderr.join('\n'));
    assert.deepEqual(p.stdout, [
      ...NOTES,
      'event 1 (from input line 1):',
      '    metadata.plan: expected "paid", got "free"',
      'event 3 (from input line 3):',
      '    event_type: expected "audit.read", got "user.logout"',
      'event 5: expected {"event_type":"user.extra"}, but the pipeline put out only 4 events',
      `FAIL ${MODULE}: 3 of 5 events differ`,
    ]);
  });

  test("the README's polku test example prints what the README shows", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = /^```text\n\$ npx polku test (.*)\n([\s\S]*?)^```$/m.exec(readme);
    assert.ok(block, 'the README has a polku test example');
    const p = runPolku(['test', ...block[1]!.split(' ')]);
    assert.equal((await p.exited).code, 1);
    assert.deepEqual(p.stdout, block[2]!.trimEnd().split('\n'));
  });

  test('a field that is not an event field, or a missing --expect, is refused by name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-test-'));
    const expect = join(dir, 'expected.ndjson');
    writeFileSync(expect, '{"event_type": "user.signup"}\n{"eventType": "user.login"}\n');
    const p = runPolku(['test', MODULE, '--input', INPUTS, '--expect', expect]);
    assert.notEqual((await p.exited).code, 0);
    assert.match(
      p.stderr.join('\n'),
      new RegExp(`${expect.replace(/[.]/g, '\\.')}:2: "eventType" is not an event field \\(id, timestamp_unix_ns, source`),
    );
    const missing = runPolku(['test', MODULE, '--input', INPUTS]);
    assert.notEqual((await missing.exited).code, 0);
    assert.match(missing.stderr.join('\n'), /polku test wants one MODULE, --input and --expect/);
  });
});
