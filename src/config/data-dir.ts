import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { polkuError } from '../errors.js';

/**
 * Checks that the durable data dir can be created and written, before anything listens: the log
 * would fail on its first mkdir or write with a bare errno deep in a stack. Creates the directory
 * (as the log would) and writes and removes one small file. Throws POLKU_ERR_STORAGE_IO naming the
 * directory, what the system said and what to change (`setBy`: the variable, or the module's
 * `durable({ dir })`).
 */
export async function checkDataDirWritable(dir: string, setBy = 'POLKU_DATA_DIR'): Promise<void> {
  const probe = join(dir, `.polku-write-check-${process.pid}`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(probe, 'w');
    try {
      await handle.writeFile('ok\n');
    } finally {
      await handle.close();
    }
    await unlink(probe);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw polkuError(
      'POLKU_ERR_STORAGE_IO',
      `the durable data dir ${dir} cannot be written (${e.code ?? e.message}${e.path && e.path !== probe && e.path !== dir ? ` at ${e.path}` : ''}): ` +
        `set ${setBy} to a writable directory (in the chart: a volume mounted there)`,
    );
  }
}
