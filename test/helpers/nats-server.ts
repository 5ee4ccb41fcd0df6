// A real nats-server with JetStream for a test: a private loopback port, its own store dir,
// stopped in `after`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type LineProcess } from './line-process.js';
import { privatePort, serverMissing } from './bus-server.js';

/** False when nats-server is installed, else why not (throws under CI=true). */
export const natsMissing = (): string | false => serverMissing('nats-server');

export class NatsServer {
  /** JetStream's store (-sd): streams survive a stop and `start()`. */
  readonly dir = mkdtempSync(join(tmpdir(), 'polku-nats-'));
  private process: LineProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== null;
  }

  /** Starts a server on a fresh private port; resolves once it is ready for clients. */
  static async start(args: string[] = []): Promise<NatsServer> {
    for (let attempt = 0; ; attempt++) {
      const server = new NatsServer(await privatePort(), args);
      try {
        await server.start();
        return server;
      } catch (err) {
        server.remove();
        if (attempt >= 3 || !/address already in use/i.test(String(err))) throw err;
      }
    }
  }

  /** (Re)starts the server on its port and store; resolves once it is ready for clients. */
  async start(): Promise<void> {
    if (this.process) return;
    const p = startProcess('nats-server', ['-js', '-sd', this.dir, '-a', '127.0.0.1', '-p', String(this.port), ...this.args]);
    this.process = p;
    try {
      // Logged after JetStream has recovered its streams from the store and the port is open.
      await p.line(/Server is ready/, 20_000);
    } catch (err) {
      this.process = null;
      await p.kill();
      throw err;
    }
  }

  /** SIGTERM (a clean shutdown), waiting for the exit. */
  async stop(): Promise<void> {
    const p = this.process;
    this.process = null;
    await p?.kill('SIGTERM');
  }

  /** Stops the server and deletes its store. */
  async close(): Promise<void> {
    await this.stop();
    this.remove();
  }

  private remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
