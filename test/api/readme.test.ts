// The README's TypeScript examples, as users copy them: each is written to a file inside the
// package (so `polku`, `polku/server` and `polku/testing` resolve as they do for users, through
// `exports` to dist/), type-checked, and run: a pipeline module through `polku validate`, any
// other snippet (the testing one) as a script that must exit 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { ROOT } from '../helpers/line-process.js';
import { ensureBuilt } from './built.js';

const run = promisify(execFile);

/** The ```ts blocks of the README that import the package. */
function snippets(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).filter((code) => /from 'polku(\/\w+)?'/.test(code));
}

let dir = '';
let files: string[] = [];

before(
  async () => {
    await ensureBuilt();
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(ROOT, '.tmp', 'readme-'));
    files = snippets().map((code, i) => {
      const file = join(dir, `snippet-${i}.ts`);
      writeFileSync(file, code);
      return file;
    });
  },
  { timeout: 180_000 },
);

after(() => rmSync(dir, { recursive: true, force: true }));

test('the README has the pipeline module, the resilience and the testing examples', () => {
  const all = snippets();
  assert.ok(all.some((code) => code.includes('// polku.config.ts')));
  assert.ok(all.some((code) => code.includes('withCircuitBreaker(')));
  assert.ok(all.some((code) => code.includes("from 'polku/testing'")));
});

test('every README example type-checks against the built package', () => {
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const problems = ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file ? d.file.fileName : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  assert.deepEqual(problems, []);
});

test('every README pipeline module passes polku validate', { timeout: 120_000 }, async () => {
  const modules = files.filter((f) => readFileSync(f, 'utf8').includes('export default hub()'));
  assert.ok(modules.length >= 2);
  for (const file of modules) {
    await run(process.execPath, [join(ROOT, 'bin', 'polku.js'), 'validate', '--config', file], { cwd: ROOT });
  }
});

test('the README testing example runs as written and exits 0', { timeout: 60_000 }, async () => {
  const [file] = files.filter((f) => readFileSync(f, 'utf8').includes("from 'polku/testing'"));
  assert.ok(file);
  // A failed assertion or an unsettled wait (exit 13) rejects with the output.
  await run(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, timeout: 30_000 });
});

test("the README's environment tables agree with ENV_VARIABLES, the table polku --help prints", async () => {
  const { ENV_VARIABLES } = await import('../../src/config/env.js');
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const rows = new Map([...readme.matchAll(/^\| `((?:POLKU_|NODE_NAME)\w*)` \| ([^|]*) \|/gm)].map((m) => [m[1]!, m[2]!.trim()]));
  for (const [name, shownDefault] of ENV_VARIABLES) {
    const documented = rows.get(name);
    assert.ok(documented !== undefined, `${name} has a row in the README`);
    // A default in code font is the value itself; words are the help's words ("(none)": "none").
    // The allowlist's is too long for a table: the README names it in prose below the table.
    const code = /^`(.*)`$/.exec(documented);
    if (code) assert.equal(code[1], shownDefault, name);
    else if (name !== 'POLKU_REGISTRY_ALLOWLIST') assert.equal(`(${documented})`, shownDefault, name);
  }
  for (const name of rows.keys())
    assert.ok(
      ENV_VARIABLES.some(([n]) => n === name),
      `${name} in the README is read by the gateway`,
    );
});
