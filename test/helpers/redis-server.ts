// A real redis-server for a test: a private loopback port, its own temp dir, stopped in `after`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type LineProcess } from './line-process.js';
import { privatePort, serverMissing } from './bus-server.js';

/** False when redis-server is installed, else why not (throws under CI=true). */
export const redisMissing = (): string | false => serverMissing('redis-server');

export interface RedisServerOptions {
  /**
   * Append-only file with an fsync per second, so entries written before a stop are there after
   * `start()` again (the restart test). Default false: `--save ''`, nothing on disk.
   */
  appendOnly?: boolean;
  /** Extra `--name value` arguments (maxmemory for an OOM test, for example). */
  args?: string[];
}

export class RedisServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'polku-redis-'));
  private process: LineProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== null;
  }

  /** Starts a server on a fresh private port; resolves once it accepts connections. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    for (let attempt = 0; ; attempt++) {
      const server = new RedisServer(await privatePort(), options);
      try {
        await server.start();
        return server;
      } catch (err) {
        server.remove();
        if (attempt >= 3 || !/Address already in use/.test(String(err))) throw err;
      }
    }
  }

  /** (Re)starts the server on its port and dir; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.process) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', ''];
    args.push('--appendonly', this.options.appendOnly ? 'yes' : 'no', '--appendfsync', 'everysec');
    const p = startProcess('redis-server', [...args, ...(this.options.args ?? [])]);
    this.process = p;
    try {
      // Logged once the data (the AOF after a restart) is loaded and the port is open.
      await p.line(/Ready to accept connections/, 20_000);
    } catch (err) {
      this.process = null;
      await p.kill();
      throw err;
    }
  }

  /** SIGTERM (redis-server flushes the AOF and exits), waiting for the exit. */
  async stop(): Promise<void> {
    const p = this.process;
    this.process = null;
    await p?.kill('SIGTERM');
  }

  /** Stops the server and deletes its dir. */
  async close(): Promise<void> {
    await this.stop();
    this.remove();
  }

  private remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
