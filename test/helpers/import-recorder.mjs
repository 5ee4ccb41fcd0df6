// Preload (`node --import ./test/helpers/import-recorder.mjs`, or NODE_OPTIONS): appends the URL
// of every module the process resolves to the file named by POLKU_TEST_IMPORT_LOG, one a line.
// Tests read it to see what a process really loaded: our modules and every package they import.
// Two ways in, both recorded: the ES module loader (its resolve hook, on the loader's thread) and
// CommonJS `require` (Module._resolveFilename, here), which a `createRequire` loader
// (src/emit/client-libraries.ts) and packages' own requires go through.
import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';

const log = process.env.POLKU_TEST_IMPORT_LOG;
if (log) {
  register(new URL('./import-recorder-hooks.mjs', import.meta.url));
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function recordResolve(...args) {
    const file = resolveFilename.apply(this, args);
    if (isAbsolute(file)) appendFileSync(log, `${pathToFileURL(file).href}\n`);
    return file;
  };
}
