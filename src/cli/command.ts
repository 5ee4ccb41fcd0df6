import { parseArgs } from 'node:util';
import { didYouMean } from '../config/did-you-mean.js';
import { polkuError } from '../errors.js';

/**
 * The CLI's exit statuses (README "Exit codes"): scripts and CI branch on them.
 * -1 is not a status: `serve` keeps running and signals decide how it ends.
 */
export const EXIT = {
  ok: 0,
  /** A check failed, the gateway refused something, or a command could not do its work. */
  failed: 1,
  /** The command line itself is wrong: unknown command or flag, a missing or malformed value. */
  usage: 2,
  /** A bug in polku: an error nobody coded. */
  internal: 70,
  /** Not an exit: the command keeps the process running (serve). */
  running: -1,
} as const;

/** One flag of a command: node's parseArgs descriptor plus what its help says. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean | string[];
  /** The value's placeholder in help (`FILE`, `ADDR`); string flags only. */
  readonly arg?: string;
  /** One line of help. */
  readonly help: string;
}

/** The values parseArgs read: strings, booleans, or string lists for `multiple` flags. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** What a command's `run` gets. */
export interface CommandInput {
  readonly values: FlagValues;
  readonly positionals: string[];
  /** `--debug`: print stack traces and details. */
  readonly debug: boolean;
}

/**
 * One `polku` command. Adding a command is one file exporting one of these plus one line in the
 * table in main.ts; help, `--help`, usage errors and exit statuses come from here.
 */
export interface Command {
  readonly name: string;
  /** One line for `polku --help`. */
  readonly summary: string;
  /** The synopsis after `polku <name> ` (`[--config FILE]`, `list|inspect ID|...`). */
  readonly usage: string;
  /** Longer text under the synopsis in `polku <name> --help`; optional. */
  readonly description?: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Whether words that are not flags are allowed (`polku dlq list`). */
  readonly positionals?: boolean;
  /**
   * The command reads its own arguments (subcommands with flags of their own: `polku sinks init
   * postgres --connection …`): `run` gets them untouched as `positionals`, `flags` only document
   * them. Its parseArgs errors still exit 2 (see main.ts).
   */
  readonly ownArgs?: boolean;
  /** Extra help text after the flags (the environment table for serve and validate). */
  readonly helpFooter?: () => string;
  /** Runs the command; resolves to an exit status from {@link EXIT}. */
  run(input: CommandInput): Promise<number>;
}

/** `polku <name> --help`. */
export function commandHelp(c: Command): string {
  const lines = [`polku ${c.name} — ${c.summary}`, '', `Usage: polku ${c.name} ${c.usage}`.trimEnd()];
  if (c.description) lines.push('', c.description);
  const rows = Object.entries(c.flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${name}${f.type === 'string' ? ` ${f.arg ?? 'VALUE'}` : ''}`;
    const def = f.default === undefined || (Array.isArray(f.default) && f.default.length === 0) ? '' : ` [${String(f.default)}]`;
    return [left, `${f.help}${f.multiple ? ' (repeatable)' : ''}${def}`] as const;
  });
  rows.push(['    --debug', 'print stack traces of errors'], ['-h, --help', 'this help']);
  const width = Math.max(...rows.map(([l]) => l.length));
  lines.push('', 'Options:', ...rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`));
  const footer = c.helpFooter?.();
  if (footer) lines.push('', footer);
  return lines.join('\n');
}

/**
 * Reads a command's flags with node's parseArgs (strict: an unknown flag, a missing value or a
 * stray word is an error), rewording its errors into one line with a did-you-mean.
 * Throws POLKU_ERR_CLI_USAGE (exit 2).
 */
export function parseFlags(c: Command, args: string[]): { values: FlagValues; positionals: string[] } {
  const options = Object.fromEntries(
    Object.entries(c.flags).map(([name, f]) => [
      name,
      {
        type: f.type,
        ...(f.short ? { short: f.short } : {}),
        ...(f.multiple ? { multiple: true } : {}),
        ...(f.default === undefined ? {} : { default: f.default }),
      },
    ]),
  );
  try {
    // The descriptors are built from FlagSpec, whose shapes parseArgs accepts; its literal-type
    // inference cannot follow a record built at run time.
    const parsed = parseArgs({ args, options: options as never, strict: true, allowPositionals: c.positionals ?? false });
    return { values: parsed.values as FlagValues, positionals: parsed.positionals };
  } catch (err) {
    throw polkuError('POLKU_ERR_CLI_USAGE', usageMessage(c, err));
  }
}

function usageMessage(c: Command, err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const flag = /'(-[^']*)'/.exec(message)?.[1] ?? message;
      const name = flag.replace(/^-+/, '').split('=')[0]!;
      const near = didYouMean(name, Object.keys(c.flags));
      return `${c.name} has no option ${flag}${near ? `: did you mean --${near}?` : ''}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const word = /'([^']*)'/.exec(message)?.[1] ?? '';
      return `${c.name} takes no argument "${word}" (flags start with --)`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      // "Option '--file <value>' argument missing" / "Option '--json' does not take an argument"
      const flag = /'(-[^' ]*)/.exec(message)?.[1] ?? '';
      const f = c.flags[flag.replace(/^--?/, '')];
      if (message.includes('missing')) return `${c.name} ${flag} wants a value${f?.arg ? ` (${f.arg})` : ''}`;
      return `${c.name} ${flag} takes no value`;
    }
    default:
      return message;
  }
}

/** A string flag's value (parseArgs guarantees the type for declared flags). */
export function flag(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable string flag's values. */
export function flags(values: FlagValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : [];
}

/** What a client command prints: `output` on stdout, `error` (a line or two) on stderr. */
export interface CliResult {
  readonly ok: boolean;
  readonly output: string;
  readonly error?: string;
}

/** Prints a result and gives its exit status: 0 when ok, else 1. */
export function printResult(r: CliResult): number {
  if (r.output) console.log(r.output);
  if (r.error) console.error(`polku: ${r.error}`);
  return r.ok ? EXIT.ok : EXIT.failed;
}

/**
 * A command whose function reads its own argument list (`fn(args)` returning an exit status):
 * the table's entry for it, with its usage text as the help.
 */
export function ownArgsCommand(
  name: string,
  summary: string,
  usage: string,
  fn: (args: string[]) => Promise<number>,
  description?: string,
): Command {
  return {
    name,
    summary,
    usage,
    ...(description === undefined ? {} : { description }),
    flags: {},
    ownArgs: true,
    run: ({ positionals }) => fn(positionals),
  };
}
