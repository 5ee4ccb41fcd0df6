import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './polku-process.js';

/**
 * Runs one of the repository's setup scripts (toolchain installs, example builds) from the root.
 * A failure carries the script's own message, which names what is missing.
 */
export async function runSetupScript(path: string, args: string[] = []): Promise<void> {
  try {
    await promisify(execFile)(join(ROOT, path), args, { cwd: ROOT, timeout: 600_000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${path} ${args.join(' ')} failed (CI=${process.env['CI'] ?? ''}):\n${e.stderr || e.stdout || e.message}`);
  }
}
