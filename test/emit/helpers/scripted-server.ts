import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * How the server answers one request:
 * - a status with optional headers and body;
 * - `hang`: never answers (the socket is cut when the server closes);
 * - `reset`: destroys the connection once the request has arrived.
 */
export type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang' | 'reset';

/** One request as the server received it. */
export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The body parsed as JSON. */
  readonly body: unknown;
}

/**
 * A real HTTP server on 127.0.0.1 that answers requests from a script, in order, then 200 with an
 * empty body. It records every request and counts the TCP connections it accepted.
 */
export class ScriptedServer {
  readonly requests: ReceivedRequest[] = [];
  /** TCP connections accepted so far. */
  connections = 0;
  private readonly script: Reply[] = [];
  private readonly open = new Set<Socket>();
  private waiters: Array<() => void> = [];

  private constructor(private readonly server: http.Server) {
    server.on('connection', (socket: Socket) => {
      this.connections++;
      this.open.add(socket);
      socket.on('close', () => {
        this.open.delete(socket);
        this.notify();
      });
    });
    server.on('request', (req, res) => this.answer(req, res));
  }

  static async start(): Promise<ScriptedServer> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ScriptedServer(server);
  }

  /** `http://127.0.0.1:<port>` plus `path`. */
  url(path = '/hook'): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** Queues answers for the next requests, in order. */
  reply(...replies: Reply[]): void {
    this.script.push(...replies);
  }

  /** Connections currently open. */
  get openConnections(): number {
    return this.open.size;
  }

  /** Resolves once no connection is open. */
  whenNoConnections(): Promise<void> {
    return this.until(() => this.open.size === 0);
  }

  /** Cuts every connection (ending hung requests) and stops listening. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : undefined });
      const reply = this.script.shift() ?? { status: 200 };
      if (reply === 'hang') return;
      if (reply === 'reset') {
        req.socket.destroy();
        return;
      }
      res.writeHead(reply.status, reply.headers);
      res.end(reply.body ?? '');
    });
  }

  private until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => (done() ? resolve() : void this.waiters.push(check));
      this.waiters.push(check);
    });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** A URL on 127.0.0.1 where nothing listens: a port that was just free. */
export async function refusingUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hook`;
}

export { until } from '../../helpers/gateway-harness.js';
