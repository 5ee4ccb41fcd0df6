import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT, runPolku } from '../helpers/polku-process.js';

/* `polku validate` as a user runs it before a rollout: what it refuses, and what it warns about. */

const written: string[] = [];
let n = 0;
/** A module beside the fixtures (so it resolves polku's sources and tsconfig), removed after the run. */
function module(text: string): string {
  const file = join('test', 'fixtures', `.validate-${process.pid}-${n++}.config.ts`);
  writeFileSync(join(ROOT, file), text);
  written.push(join(ROOT, file));
  return file;
}
after(() => {
  for (const f of written) rmSync(f, { force: true });
});

/** The same, as plain JavaScript: no type check stands between a misspelt key and the constructor. */
function moduleJs(text: string): string {
  const file = join('test', 'fixtures', `.validate-${process.pid}-${n++}.config.js`);
  writeFileSync(join(ROOT, file), text);
  written.push(join(ROOT, file));
  return file;
}

const HEAD = `import { hub, JsonIngestor } from '../../src/index.js';\nimport { InMemoryEmitter } from '../../src/testing/index.js';\n`;

async function validate(args: string[], env: Record<string, string> = {}) {
  const p = runPolku(['validate', ...args], env);
  const { code } = await p.exited;
  return { code, out: p.stdout.join('\n'), err: p.stderr.join('\n') };
}

describe('polku validate', () => {
  test('a misspelt option: the type check names it, line and column, with the did-you-mean; exit 1', async () => {
    const file = module(
      `${HEAD}export default hub().ingestor(new JsonIngestor())\n  .emitter(new InMemoryEmitter())\n  .buffer({ capacit: 500 });\n`,
    );
    const r = await validate(['--config', file]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.err, /POLKU_ERR_CONFIG_INVALID: pipeline module .* does not type-check \(1 error\)/);
    assert.ok(
      r.err.includes(`${file}:5:13 - error TS2561: Object literal may only specify known properties, but 'capacit' does not exist`),
      r.err,
    );
    assert.match(r.err, /Did you mean to write 'capacity'\?/);
    assert.equal(r.out, '', 'no "pipeline OK"');
  });

  test('the same module without the type check (or in JavaScript): refused at construction, naming the key', async () => {
    const file = module(
      `${HEAD}export default hub().ingestor(new JsonIngestor())\n  .emitter(new InMemoryEmitter())\n  // @ts-expect-error: the test's misspelling\n  .buffer({ capacit: 500 });\n`,
    );
    const r = await validate(['--config', file, '--no-type-check']);
    assert.equal(r.code, 1, r.out);
    assert.match(
      r.err,
      /POLKU_ERR_CONFIG_INVALID: pipeline module .* failed to load: hub\(\)\.buffer\(\): unknown option "capacit": did you mean "capacity"\? \(known: capacity, maxBytes, overflow\)/,
    );
    // serve refuses it the same way: the check is in the builder, not in validate.
    const serve = runPolku(['serve', '--config', file], { POLKU_GRPC_ADDR: '127.0.0.1:0', POLKU_METRICS_ADDR: '127.0.0.1:0' });
    assert.equal((await serve.exited).code, 1);
    assert.match(serve.stderr.join('\n'), /unknown option "capacit": did you mean "capacity"\?/);
  });

  test('a misspelt emitter option in a .js module: validate exits 1 and serve refuses to start, each naming it', async () => {
    const file = moduleJs(
      `import { hub, JsonIngestor, PostgresEmitter } from '../../src/index.js';\n` +
        `export default hub().ingestor(new JsonIngestor())\n` +
        `  .emitter(new PostgresEmitter({ name: 'pg', connectionString: 'postgres://127.0.0.1:1/x', tabel: 'x' }));\n`,
    );
    const line =
      'PostgresEmitter "pg": unknown option "tabel": did you mean "table"? (known: name, connectionString, table, columns, poolSize, rowsPerStatement, timeoutMs, connectTimeoutMs)';
    const r = await validate(['--config', file]);
    assert.equal(r.code, 1, r.out);
    assert.equal(r.out, '', 'no "pipeline OK"');
    assert.ok(r.err.includes(`polku: POLKU_ERR_CONFIG_INVALID: pipeline module ${join(ROOT, file)} failed to load: ${line}`), r.err);
    const serve = runPolku(['serve', '--config', file], { POLKU_GRPC_ADDR: '127.0.0.1:0', POLKU_METRICS_ADDR: '127.0.0.1:0' });
    assert.equal((await serve.exited).code, 1);
    assert.ok(serve.stderr.join('\n').includes(line), serve.stderr.join('\n'));
    assert.ok(!serve.stderr.join('\n').includes('listening'), 'never listened');
  });

  test('a type error: exit 1 with the compiler diagnostic at file:line:col', async () => {
    const file = module(
      `${HEAD}const size: number = 'large';\nexport default hub().ingestor(new JsonIngestor()).emitter(new InMemoryEmitter()).buffer({ capacity: size });\n`,
    );
    const r = await validate(['--config', file]);
    assert.equal(r.code, 1);
    assert.ok(r.err.includes(`${file}:3:7 - error TS2322: Type 'string' is not assignable to type 'number'.`), r.err);
  });

  test('every setting the module overrides is a warning, naming the variable it beats', async () => {
    const file = module(
      `${HEAD}export default hub().ingestor(new JsonIngestor()).emitter(new InMemoryEmitter()).buffer({ capacity: 500 }).delivery({ batchSize: 50 });\n`,
    );
    const r = await validate(['--config', file], { POLKU_BUFFER_CAPACITY: '2000' });
    assert.equal(r.code, 0, r.err);
    const warnings = r.out.split('\n').filter((l) => l.startsWith('  warning:'));
    assert.deepEqual(warnings, [
      '  warning:    the module sets buffer.capacity = 500, overriding POLKU_BUFFER_CAPACITY=2000 (the environment or the chart)',
      "  warning:    the module sets delivery.batchSize = 50; POLKU_BATCH_SIZE (and the chart's value for it) would be ignored",
    ]);
    assert.match(r.out, /buffer: +500 events/);
  });

  test('a durable data dir that cannot be written: exit 1 naming it and POLKU_DATA_DIR', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-validate-'));
    writeFileSync(join(dir, 'file'), '');
    const r = await validate([], { POLKU_DURABLE: 'true', POLKU_DATA_DIR: join(dir, 'file', 'data') });
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      new RegExp(
        `POLKU_ERR_STORAGE_IO: the durable data dir ${join(dir, 'file', 'data')} cannot be written \\(ENOTDIR\\): set POLKU_DATA_DIR`,
      ),
    );
  });
});
