// Properties of upstream POLKU's settings: POLKU_LOG_LEVEL's reader against a reference, the
// unknown-variable check, and the endpoint list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EnvProblem, grpcEndpoints } from '../../src/config/env-parsers.js';
import { ENV_TABLE } from '../../src/config/env-table.js';
import { unknownVariables } from '../../src/config/unknown-variables.js';
import { LOG_LEVELS, parseLogLevel } from '../../src/observability/logger.js';
import { fuzzRuns } from './runs.js';

const WORDS: Record<string, string> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  fatal: 'fatal',
  silent: 'silent',
  off: 'silent',
  none: 'silent',
};
const randomCase = (word: string) =>
  fc
    .array(fc.boolean(), { minLength: word.length, maxLength: word.length })
    .map((up) => [...word].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
const level = fc.constantFrom(...Object.keys(WORDS)).chain((w) => randomCase(w).map((spelled) => ({ spelled, level: WORDS[w]! })));
const target = fc.constantFrom('polku', 'polku_gateway', 'polku-gateway::hub', 'h2', 'tonic', 'module', 'tower::buffer');
type Directive = { text: string; bare?: string; polku?: string };
const directive: fc.Arbitrary<Directive> = fc.oneof(
  level.map((l) => ({ text: l.spelled, bare: l.level })),
  fc.tuple(target, level).map(([t, l]) => ({ text: `${t}=${l.spelled}`, ...(t.startsWith('polku') ? { polku: l.level } : {}) })),
);

test('POLKU_LOG_LEVEL: every well-formed filter reads as the first bare level, else the first polku one, else info', () => {
  fc.assert(
    fc.property(fc.array(directive, { minLength: 1, maxLength: 6 }), fc.constantFrom(',', ', ', ' ,'), (directives, sep) => {
      const expected = directives.find((d) => d.bare)?.bare ?? directives.find((d) => d.polku)?.polku ?? 'info';
      assert.equal(parseLogLevel(directives.map((d) => d.text).join(sep)), expected);
    }),
    { numRuns: fuzzRuns() },
  );
});

test('POLKU_LOG_LEVEL: any text never throws, and reads as a pino level or nothing', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 64 }), (raw) => {
      const read = parseLogLevel(raw);
      assert.ok(read === undefined || LOG_LEVELS.includes(read));
    }),
    { numRuns: fuzzRuns() },
  );
});

const known = Object.values(ENV_TABLE)
  .map((v) => v.name)
  .filter((n) => n.startsWith('POLKU_'));

test('unknown POLKU_* variables: known names are never reported; a one-letter typo of a long name is named', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...known),
      fc.nat(),
      fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ_'),
      fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 4 }), { maxKeys: 5 }),
      (name, at, letter, noise) => {
        const i = 6 + (at % (name.length - 6));
        const typo = name.slice(0, i) + letter + name.slice(i + 1);
        const env = { ...noise, [name]: '1', [typo]: '1' };
        const reported = unknownVariables(env);
        assert.ok(reported.every((u) => u.name.startsWith('POLKU_') && !known.includes(u.name)));
        const mine = reported.find((u) => u.name === typo);
        if (typo === name || known.includes(typo)) assert.equal(mine, undefined);
        else assert.ok(mine?.didYouMean !== undefined, `${typo} should resemble a known name`);
      },
    ),
    { numRuns: fuzzRuns() },
  );
});

test('POLKU_EMIT_GRPC_ENDPOINTS: a list of host:port entries reads back as written; any text never throws', () => {
  const host = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,20}$/);
  const endpoint = fc
    .tuple(fc.constantFrom('', 'http://', 'https://'), host, fc.integer({ min: 1, max: 65535 }))
    .map(([s, h, p]) => `${s}${h}:${p}`);
  fc.assert(
    fc.property(fc.uniqueArray(endpoint, { minLength: 1, maxLength: 5 }), (list) => {
      assert.deepEqual(grpcEndpoints.parse(list.join(',')), list);
    }),
    { numRuns: fuzzRuns() },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (raw) => {
      const read = grpcEndpoints.parse(raw);
      assert.ok(read instanceof EnvProblem || Array.isArray(read));
    }),
    { numRuns: fuzzRuns() },
  );
});
