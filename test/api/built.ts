// dist/ as the package's entry points see it: the tests here import `polku`, `polku/server` and
// `polku/testing` by name (the package refers to itself through `exports`), which reads dist/.
// A dist/ older than src/ is rebuilt first, once, even with several test files asking at once.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../helpers/line-process.js';

const LOCK = join(ROOT, '.tmp', 'build.lock');

function newestMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function stale(): boolean {
  try {
    return statSync(join(ROOT, 'dist', 'index.js')).mtimeMs < newestMs(join(ROOT, 'src'));
  } catch {
    return true;
  }
}

/** Resolves once dist/ is at least as new as src/, running `tsc -p tsconfig.build.json` if not. */
export async function ensureBuilt(): Promise<void> {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  for (let waited = 0; stale(); waited += 200) {
    try {
      mkdirSync(LOCK); // atomic: one test file builds, the others wait for it
    } catch {
      if (waited > 120_000) throw new Error(`${LOCK} held for 2 minutes: remove it if no build runs`);
      await sleep(200);
      continue;
    }
    try {
      if (stale())
        execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT });
    } finally {
      rmSync(LOCK, { recursive: true, force: true });
    }
  }
}
