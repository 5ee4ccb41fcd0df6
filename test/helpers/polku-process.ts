import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface PolkuProcess {
  child: ChildProcess;
  /** Every stdout line so far. */
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stdout line matching `pattern` (already seen or yet to come). */
  line(pattern: RegExp, limitMs?: number): Promise<string>;
}

/**
 * Runs the CLI as its own process. `viaBin` goes through bin/polku.js exactly as the README does;
 * otherwise the TypeScript sources run through tsx, so tests never see a stale build.
 */
export function runPolku(args: string[], env: Record<string, string> = {}, viaBin = false): PolkuProcess {
  const argv = viaBin ? ['bin/polku.js', ...args] : ['--import', 'tsx', 'src/cli/main.ts', ...args];
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { ...process.env, POLKU_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const watchers: Array<{ pattern: RegExp; resolve: (l: string) => void }> = [];
  const collect = (into: string[], watch: boolean) => {
    let partial = '';
    return (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        into.push(l);
        if (!watch) continue;
        for (let i = watchers.length - 1; i >= 0; i--) {
          if (watchers[i]!.pattern.test(l)) watchers.splice(i, 1)[0]!.resolve(l);
        }
      }
    };
  };
  child.stdout!.on('data', collect(stdout, true));
  child.stderr!.on('data', collect(stderr, false));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout,
    stderr,
    exited,
    line(pattern, limitMs = 20_000) {
      const seen = stdout.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no stdout line matched ${pattern} within ${limitMs} ms; stderr: ${stderr.join('\n')}`)),
          limitMs,
        );
        watchers.push({
          pattern,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`process exited before a line matched ${pattern}; stderr: ${stderr.join('\n')}`));
        });
      });
    },
  };
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
  const p = runPolku(['serve', ...args], { POLKU_GRPC_ADDR: '127.0.0.1:0', POLKU_METRICS_ADDR: '127.0.0.1:0', ...env }, viaBin);
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
