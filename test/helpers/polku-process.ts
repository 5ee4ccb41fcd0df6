import type { ChildProcess } from 'node:child_process';
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
 * otherwise the TypeScript sources run through tsx, so tests never see a stale build.
 */
export function runPolku(args: string[], env: Record<string, string> = {}, viaBin = false): PolkuProcess {
  const argv = viaBin ? ['bin/polku.js', ...args] : ['--import', 'tsx', 'src/cli/main.ts', ...args];
  const p = startProcess(process.execPath, argv, { POLKU_LOG_LEVEL: 'info', ...env });
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
      // The OTLP ports too: never the standard 4317/4318, which parallel tests would fight over.
      POLKU_OTLP_GRPC_ADDR: '127.0.0.1:0',
      POLKU_OTLP_HTTP_ADDR: '127.0.0.1:0',
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
