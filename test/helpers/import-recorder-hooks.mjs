// The loader hooks of import-recorder.mjs; they run on the loader's own thread.
import { appendFileSync } from 'node:fs';

const log = process.env.POLKU_TEST_IMPORT_LOG;

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (log) appendFileSync(log, `${resolved.url}\n`);
  return resolved;
}
