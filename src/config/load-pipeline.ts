import { access } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { polkuError } from '../errors.js';
import type { HubBuilder } from '../hub/builder.js';

/**
 * Loads a pipeline module (`polku.config.ts` or `.js`). Its default export (or an export named
 * `pipeline`) is a hub builder, or a function (possibly async) returning one. TypeScript modules
 * are compiled on the fly with tsx, so users need no build step.
 *
 * `fresh` (a reload): the module is evaluated again, not taken from the module cache. tsx's
 * `tsImport` loads every call in a namespace of its own, so a TypeScript module and the files it
 * imports are read anew; a JavaScript module gets a query string, which renews that file only.
 */
export async function loadPipeline(path: string, cwd = process.cwd(), options: { fresh?: boolean } = {}): Promise<HubBuilder> {
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  try {
    await access(file);
  } catch {
    throw polkuError('POLKU_ERR_CONFIG_NOT_FOUND', `pipeline module ${file} does not exist`);
  }
  let module: Record<string, unknown>;
  try {
    if (/\.[cm]?tsx?$/.test(file)) {
      const { tsImport } = await import('tsx/esm/api');
      module = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
    } else {
      const url = pathToFileURL(file);
      if (options.fresh) url.searchParams.set('polku-reload', String(++reloads));
      module = (await import(url.href)) as Record<string, unknown>;
    }
  } catch (err) {
    throw polkuError('POLKU_ERR_CONFIG_INVALID', `pipeline module ${file} failed to load: ${(err as Error).message}`, err);
  }
  let exported = module['default'] ?? module['pipeline'];
  // A CommonJS-compiled module nests the default export one level deeper.
  if (exported && typeof exported === 'object' && 'default' in exported && !isBuilder(exported)) {
    exported = (exported as Record<string, unknown>)['default'];
  }
  if (typeof exported === 'function') {
    try {
      exported = await (exported as () => unknown)();
    } catch (err) {
      throw polkuError('POLKU_ERR_CONFIG_INVALID', `pipeline module ${file}: its exported function threw: ${(err as Error).message}`, err);
    }
  }
  if (!isBuilder(exported)) {
    throw polkuError(
      'POLKU_ERR_CONFIG_INVALID',
      `pipeline module ${file} must export default hub()...; (a hub builder, or a function returning one)`,
    );
  }
  return exported;
}

let reloads = 0;

/** Duck-typed: the module may import a different copy of polku than the CLI runs from. */
function isBuilder(value: unknown): value is HubBuilder {
  const v = value as Partial<HubBuilder> | null;
  return !!v && typeof v.build === 'function' && typeof v.definition === 'function';
}
