// A real PostgreSQL server per test file: initdb into a fresh temp folder, pg_ctl start on a private
// port with its unix socket in that folder, stop + remove in `after`. As root the server runs as
// the `postgres` user (PostgreSQL refuses to run as root). Installed by scripts/install-postgres.sh.
import { execFile, execFileSync, type ExecFileOptions } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The newest /usr/lib/postgresql/<version>/bin holding initdb, or undefined. */
function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(root, versions[0]!, 'bin') : undefined;
}

/**
 * Why a PostgreSQL test cannot run here, or false when it can. Under CI=true a missing server
 * throws: the test fails instead of skipping.
 */
export function postgresMissing(): string | false {
  const bin = binDir();
  let reason: string | undefined;
  if (bin === undefined) reason = 'no PostgreSQL server under /usr/lib/postgresql/<version>/bin (bash scripts/install-postgres.sh)';
  else if (process.getuid?.() === 0 && postgresUser() === undefined) reason = 'running as root and there is no postgres user';
  if (reason === undefined) return false;
  if (process.env['CI'] === 'true') throw new Error(`PostgreSQL is required under CI=true: ${reason}`);
  return reason;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** A port nobody listens on right now (the server binds it a moment later). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface PostgresServerOptions {
  /**
   * `fsync=off` (default true here): the tests check delivery, not the disk, and share two cores
   * with other test files. Benchmarks pass false to measure the server's defaults.
   */
  fast?: boolean;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
}

export class PostgresServer {
  readonly dir: string;
  readonly dataDir: string;
  readonly port: number;
  /** Superuser `polku`, database `polku`, trust auth on loopback. */
  readonly connectionString: string;
  private readonly bin: string;
  private readonly as: ExecFileOptions;
  private readonly options: string;

  private constructor(dir: string, port: number, bin: string, as: ExecFileOptions, options: string) {
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    this.port = port;
    this.bin = bin;
    this.as = as;
    this.options = options;
    this.connectionString = `postgres://polku@127.0.0.1:${port}/polku`;
  }

  /** initdb + start; resolves once the server accepts connections and the `polku` database exists. */
  static async start(options: PostgresServerOptions = {}): Promise<PostgresServer> {
    const bin = binDir();
    if (bin === undefined) throw new Error('no PostgreSQL server installed (bash scripts/install-postgres.sh)');
    const dir = mkdtempSync(join(tmpdir(), 'polku-pg-'));
    let as: ExecFileOptions = { env: { ...process.env, LC_ALL: 'C' } };
    if (process.getuid?.() === 0) {
      const user = postgresUser();
      if (user === undefined) throw new Error('running as root and there is no postgres user');
      chownSync(dir, user.uid, user.gid);
      as = { ...as, uid: user.uid, gid: user.gid, cwd: dir };
    }
    chmodSync(dir, 0o700);
    const port = await freePort();
    const settings = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
      max_connections: '100',
      ...(options.fast === false ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
      ...options.settings,
    };
    const opts = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
    const server = new PostgresServer(dir, port, bin, as, opts);
    await run(join(bin, 'initdb'), ['-D', server.dataDir, '-U', 'polku', '--auth=trust', '-E', 'UTF8', '--no-sync'], as);
    await server.startAgain();
    await run(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'polku', 'polku'], as);
    return server;
  }

  /** pg_ctl start, waiting until the server accepts connections. */
  async startAgain(): Promise<void> {
    await run(
      join(this.bin, 'pg_ctl'),
      ['start', '-w', '-t', '60', '-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-o', this.options],
      this.as,
    );
  }

  /** pg_ctl stop -m fast: open connections are cut, as when a database goes away. */
  async stop(): Promise<void> {
    await run(join(this.bin, 'pg_ctl'), ['stop', '-w', '-m', 'fast', '-D', this.dataDir], this.as);
  }

  /** Stops the server if it runs and removes its folder. */
  async close(): Promise<void> {
    try {
      await run(join(this.bin, 'pg_ctl'), ['stop', '-w', '-m', 'immediate', '-D', this.dataDir], this.as);
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
