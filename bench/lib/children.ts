/**
 * Child-process plumbing for bench/run.ts: spawning `node --import tsx`
 * scripts, keeping the tail of their output for error messages, and making
 * sure none outlives the benchmark, whatever way it ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: children run from here so `--import tsx` and relative paths resolve. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const TAIL_LINES = 40;
const live = new Set<ChildProcess>();

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** The last lines the child wrote to stdout/stderr, for error messages. */
  tail(): string;
  /** Calls `onLine` for each complete stdout line. */
  onStdoutLine(onLine: (line: string) => void): void;
  /** Calls `onLine` for every stderr line from now on (the gateway's logs). */
  onStderrLine(onLine: (line: string) => void): void;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Open an IPC channel (process.send) to the child. */
  ipc?: boolean;
  /** Flags for node itself, before `--import tsx` (for example `--cpu-prof`). */
  nodeArgs?: string[];
}

/** Spawns `node --import tsx <script> ...args` from the repository root. */
export function spawnTsx(name: string, script: string, args: string[], opts: SpawnOptions = {}): Child {
  return spawnCommand(name, process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], opts);
}

/** Spawns `command ...args` from the repository root (bench/loadgen_grpcio.py runs this way). */
export function spawnCommand(name: string, command: string, args: string[], opts: SpawnOptions = {}): Child {
  const proc = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command} ${args.join(' ')})`);
  live.add(proc);

  const tailLines: string[] = [];
  const stdoutListeners: ((line: string) => void)[] = [];
  const stderrListeners: ((line: string) => void)[] = [];
  // BENCH_CHILD_OUTPUT_DIR keeps every line a child writes in <dir>/<name>.log (e.g. the gateway's
  // --trace-gc lines, with BENCH_GATEWAY_NODE_ARGS="--trace-gc").
  const outputDir = process.env['BENCH_CHILD_OUTPUT_DIR'];
  const file = outputDir ? createWriteStream(join(outputDir, `${name}.log`), { flags: 'a' }) : undefined;
  const keep = (line: string): void => {
    file?.write(line + '\n');
    tailLines.push(line);
    if (tailLines.length > TAIL_LINES) tailLines.shift();
  };
  forEachLine(proc.stdout!, (line) => {
    keep(line);
    for (const listener of stdoutListeners) listener(line);
  });
  forEachLine(proc.stderr!, (line) => {
    keep(line);
    for (const listener of stderrListeners) listener(line);
  });

  const exited = new Promise<number | string>((resolve) => {
    // 'close' (not 'exit') fires once stdout/stderr are drained, so no output is lost.
    proc.once('close', (code, signal) => {
      live.delete(proc);
      resolve(code ?? signal ?? 'unknown');
    });
    proc.once('error', (err) => {
      live.delete(proc);
      keep(String(err));
      resolve('spawn-error');
    });
  });

  return {
    name,
    proc,
    pid: proc.pid,
    exited,
    tail: () => (tailLines.length > 0 ? tailLines.join('\n') : '(no output)'),
    onStdoutLine: (listener) => void stdoutListeners.push(listener),
    onStderrLine: (listener) => void stderrListeners.push(listener),
  };
}

function forEachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (pending.length > 0) onLine(pending);
  });
}

export function hasExited(child: Child): boolean {
  return child.proc.exitCode !== null || child.proc.signalCode !== null;
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILLs. Returns true if it exited on its own. */
export async function stopChild(child: Child, graceMs: number): Promise<boolean> {
  if (hasExited(child)) return true;
  child.proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
  // Clear the timer either way: a pending one would keep run.ts alive for the whole grace period.
  const outcome = await Promise.race([child.exited, timedOut]).finally(() => clearTimeout(timer));
  if (outcome !== 'timeout') return true;
  child.proc.kill('SIGKILL');
  await child.exited;
  return false;
}

/** Last-resort cleanup: SIGKILL every child still running. Synchronous, so it works in 'exit'. */
export function killAllChildren(): void {
  for (const proc of live) proc.kill('SIGKILL');
  live.clear();
}

/** Make sure no child survives run.ts, whether it returns, throws or is interrupted. */
export function installChildCleanup(): void {
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllChildren();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** A TCP port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
