// Preload (`node --import ./test/helpers/import-recorder.mjs`, or NODE_OPTIONS): appends the URL
// of every module the process resolves through the ES module loader to the file named by
// POLKU_TEST_IMPORT_LOG, one a line. Tests read it to see what a process really loaded: our
// modules and every package they import (a package's own CommonJS requires stay inside it and
// are not listed, its entry is).
import { register } from 'node:module';

if (process.env.POLKU_TEST_IMPORT_LOG) register(new URL('./import-recorder-hooks.mjs', import.meta.url));
