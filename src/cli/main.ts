import { readFileSync } from 'node:fs';
import { isPolkuError, StorageError } from '../errors.js';
import { commandHelp, EXIT, parseFlags, type Command } from './command.js';
import { didYouMean } from '../config/did-you-mean.js';

/**
 * The commands, in the order `polku --help` lists them. A new command is one file exporting a
 * {@link Command} and one line here. Each is imported when it runs (or for help), not all at
 * start: `polku serve` then holds only its own modules (docs/benchmarks.md, "Footprint").
 */
const COMMANDS: ReadonlyArray<{ readonly name: string; readonly load: () => Promise<Command> }> = [
  { name: 'serve', load: async () => (await import('./serve.js')).serveCommand },
  { name: 'validate', load: async () => (await import('./validate.js')).validateCommand },
  { name: 'send', load: async () => (await import('./send.js')).sendCommand },
  { name: 'dlq', load: async () => (await import('./admin.js')).dlqCommand },
  { name: 'replay', load: async () => (await import('./admin.js')).replayCommand },
  { name: 'plugins', load: async () => (await import('./plugins.js')).pluginsCommand },
  { name: 'tap', load: async () => (await import('./tap.js')).tapCommand },
  { name: 'top', load: async () => (await import('./top.js')).topCommand },
  { name: 'test', load: async () => (await import('./test-command.js')).testCommand },
  { name: 'tenants', load: async () => (await import('./tenants.js')).tenantsCommand },
  { name: 'sinks', load: async () => (await import('./sinks.js')).sinksCommand },
];

/** The package's version, from its package.json (two folders up from src/cli/ and dist/cli/ alike). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function overview(): Promise<string> {
  const commands = await Promise.all(COMMANDS.map((c) => c.load()));
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'polku — event gateway for Kubernetes',
    '',
    'Usage: polku <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'polku <command> --help' for a command's options.",
    'Options for every command: --debug (stack traces), -h/--help; polku --version prints the version.',
    'Exit status: 0 ok, 1 a check failed or something was refused, 2 a usage mistake, 70 an internal error.',
  ].join('\n');
}

/** Options that stop parsing: what follows `--` is never --help or --debug. */
function before(args: readonly string[]): readonly string[] {
  const end = args.indexOf('--');
  return end < 0 ? args : args.slice(0, end);
}

/** Runs one command line; resolves to the exit status (-1: serve keeps the process running). */
export async function main(argv: readonly string[]): Promise<number> {
  const debug = before(argv).includes('--debug');
  const args = argv.filter((a, i) => !(a === '--debug' && i < before(argv).length));
  const [name, ...rest] = args;
  try {
    return await dispatch(name, rest, debug);
  } catch (err) {
    return report(err, name, debug);
  }
}

async function dispatch(name: string | undefined, rest: string[], debug: boolean): Promise<number> {
  switch (name) {
    case undefined:
      console.error(await overview());
      return EXIT.usage;
    case 'help':
    case '--help':
    case '-h': {
      const c = rest[0] === undefined ? undefined : await find(rest[0]);
      console.log(c ? commandHelp(c) : await overview());
      return EXIT.ok;
    }
    case 'version':
    case '--version':
    case '-V':
      console.log(version());
      return EXIT.ok;
  }
  const command = await find(name);
  if (before(rest).some((a) => a === '--help' || a === '-h')) {
    console.log(commandHelp(command));
    return EXIT.ok;
  }
  if (command.ownArgs) return command.run({ values: {}, positionals: rest, debug });
  const { values, positionals } = parseFlags(command, rest);
  return command.run({ values, positionals, debug });
}

async function find(name: string): Promise<Command> {
  const entry = COMMANDS.find((c) => c.name === name);
  if (entry) return entry.load();
  const near = didYouMean(
    name,
    COMMANDS.map((c) => c.name),
  );
  throw new UnknownCommand(`unknown command "${name}"${near ? `: did you mean "${near}"?` : ''}`);
}

class UnknownCommand extends Error {}

/**
 * One error as the person at the terminal needs it: a usage mistake is one line and a hint (exit
 * 2); a coded error its code and message (exit 1); anything else is a bug (exit 70). Stack traces
 * only with --debug.
 */
function report(err: unknown, name: string | undefined, debug: boolean): number {
  const stack = debug && err instanceof Error && err.stack ? `\n${err.stack}` : '';
  if (err instanceof UnknownCommand) {
    console.error(`polku: ${err.message}\nrun 'polku --help' for the commands`);
    return EXIT.usage;
  }
  // A command that reads its own arguments (ownArgs) lets node's parseArgs errors through.
  const parseCode = (err as { code?: unknown } | null)?.code;
  if (typeof parseCode === 'string' && parseCode.startsWith('ERR_PARSE_ARGS_')) {
    console.error(`polku: ${name}: ${(err as Error).message}\nrun 'polku ${name} --help' for usage${stack}`);
    return EXIT.usage;
  }
  if (isPolkuError(err) && err.code === 'POLKU_ERR_CLI_USAGE') {
    console.error(`polku: ${err.message}\nrun 'polku ${name} --help' for usage${stack}`);
    return EXIT.usage;
  }
  if (isPolkuError(err)) {
    console.error(`polku: ${err.code}: ${err.message}${stack}`);
    return EXIT.failed;
  }
  if (err instanceof StorageError) {
    console.error(`polku: ${err.errorCode}: ${err.message}${stack}`);
    return EXIT.failed;
  }
  const e = err as { message?: string };
  console.error(
    `polku: internal error: ${e?.message ?? String(err)}${stack || '\n(a bug in polku; run again with --debug for the stack trace)'}`,
  );
  return EXIT.internal;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    // main() reports its own errors; this is a failure of the reporting itself.
    console.error('polku: internal error:', err);
    process.exitCode = EXIT.internal;
  },
);
