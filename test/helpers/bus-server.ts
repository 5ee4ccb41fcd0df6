// What the Redis and NATS test servers share: finding the binary (under CI=true a missing one is a
// failure, elsewhere a skip that says why) and a private port that stays usable across a restart.
import { spawnSync } from 'node:child_process';
import net from 'node:net';

const INSTALL = 'bash scripts/install-redis-nats.sh';

/**
 * False when `binary` runs; otherwise why not, for `test(..., { skip })`. Under CI=true it throws
 * instead: CI runs the install script first, so a missing server there is a broken setup.
 */
export function serverMissing(binary: string): string | false {
  const found = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (found.status === 0) return false;
  const why = `${binary} is not installed (${INSTALL})`;
  if (process.env['CI'] === 'true') throw new Error(`${why}; it is required under CI=true`);
  console.error(`# skipped: ${why}`);
  return why;
}

/**
 * A free loopback port below the kernel's ephemeral range (32768+ on Linux), so that while a test
 * has its server stopped no outgoing connection is handed the same port and the restart can bind
 * it again. Checked by binding it; a clash at the server's own bind is retried by the caller.
 */
export async function privatePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await bindable(port)) return port;
  }
  throw new Error('no free loopback port in 20000-31999 after 50 tries');
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
