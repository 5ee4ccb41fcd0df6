import type { ChildProcess } from 'node:child_process';
import type { EventJson } from '../../src/emit/event-json.js';
import { ROOT, startProcess } from './line-process.js';

export { ROOT };

export interface PolkuProcess {
  child: ChildProcess;
  /** Every stdout line so far. */
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first output line matching `pattern` (already seen or yet to come). */
  line(pattern: RegExp, limitMs?: number): Promise<string>;
}

/**
 * Runs the CLI as its own process. `viaBin` goes through bin/polku.js exactly as the README does;
 * otherwise the TypeScript sources run through tsx, so tests never see a stale build. `stdin`:
 * text for its standard input (`polku send --file -`).
 */
export function runPolku(args: string[], env: Record<string, string> = {}, viaBin = false, stdin?: string): PolkuProcess {
  const argv = viaBin ? ['bin/polku.js', ...args] : ['--import', 'tsx', 'src/cli/main.ts', ...args];
  const p = startProcess(process.execPath, argv, { POLKU_LOG_LEVEL: 'info', ...env }, stdin);
  return { ...p, line: (pattern, limitMs) => p.line(pattern, limitMs).then((m) => m.input) };
}

/**
 * Starts `polku serve` on free ports and resolves once it logged where it listens. When it gives
 * up waiting (the line never came), it kills the process before rejecting: the caller has no
 * handle to it yet, so nothing else could.
 */
export async function servePolku(
  args: string[],
  env: Record<string, string> = {},
  viaBin = false,
): Promise<PolkuProcess & { grpcPort: number; metricsPort: number }> {
  const p = runPolku(
    ['serve', ...args],
    {
      POLKU_GRPC_ADDR: '127.0.0.1:0',
      POLKU_METRICS_ADDR: '127.0.0.1:0',
      // OTLP off unless a test asks (serveOtlp): never the standard 4317/4318, which parallel tests
      // would fight over, and no extra free-port binds that could land on a port a test freed to
      // stand for a dead endpoint.
      POLKU_OTLP_GRPC_ADDR: 'off',
      POLKU_OTLP_HTTP_ADDR: 'off',
      // The HTTP front door likewise (serveHttp turns it on).
      POLKU_HTTP_ADDR: 'off',
      ...env,
    },
    viaBin,
  );
  let listening: { grpc: string; metrics: string };
  try {
    listening = JSON.parse(await p.line(/"gateway listening"/)) as { grpc: string; metrics: string };
  } catch (err) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
    throw err;
  }
  return {
    ...p,
    grpcPort: Number(listening.grpc.split(':').pop()),
    metricsPort: Number(listening.metrics.split(':').pop()),
  };
}

/**
 * The events a `polku serve` process's stdout emitter has printed so far, as `EventJson`. Logs
 * go to stderr, so stdout holds events alone; the `{"id"` check (src/emit/event-json.ts writes
 * `id` first) still skips anything else a test's own pipeline module might print.
 */
export function stdoutEvents(p: Pick<PolkuProcess, 'stdout'>): EventJson[] {
  return p.stdout.flatMap((l) => (l.startsWith('{"id"') ? [JSON.parse(l) as EventJson] : []));
}

/** A `polku serve` process with its gRPC, metrics and OTLP ports. */
export type OtlpGateway = PolkuProcess & { grpcPort: number; metricsPort: number; otlpGrpc: number; otlpHttp: number };

/** `polku serve` on free ports, with its OTLP ports from the "otlp listening" line (0 for a side that is off). */
export async function serveOtlp(args: string[], env: Record<string, string> = {}): Promise<OtlpGateway> {
  const gw = await servePolku(args, { POLKU_OTLP_GRPC_ADDR: '127.0.0.1:0', POLKU_OTLP_HTTP_ADDR: '127.0.0.1:0', ...env });
  const line = JSON.parse(await gw.line(/"otlp listening"/)) as { otlpGrpc: string; otlpHttp: string };
  const port = (address: string): number => (address === 'off' ? 0 : Number(address.split(':').pop()));
  return { ...gw, otlpGrpc: port(line.otlpGrpc), otlpHttp: port(line.otlpHttp) };
}

/** A `polku serve` process with its gRPC, metrics and HTTP front door ports. */
export type HttpGateway = PolkuProcess & { grpcPort: number; metricsPort: number; httpPort: number; httpUrl: string };

/** `polku serve` on free ports with the HTTP front door on 127.0.0.1:0, its port from the "http listening" line. */
export async function serveHttp(args: string[], env: Record<string, string> = {}): Promise<HttpGateway> {
  const gw = await servePolku(args, { POLKU_HTTP_ADDR: '127.0.0.1:0', ...env });
  const line = JSON.parse(await gw.line(/"http listening"/)) as { http: string };
  const httpPort = Number(line.http.split(':').pop());
  return { ...gw, httpPort, httpUrl: `http://127.0.0.1:${httpPort}` };
}
