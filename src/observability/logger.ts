import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
/** The level without POLKU_LOG_LEVEL. */
export const DEFAULT_LOG_LEVEL: LevelWithSilent = 'info';

/** `json`: one JSON object a line (for collectors). `pretty`: one readable line per record (for people). */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
/** The format without POLKU_LOG_FORMAT. */
export const DEFAULT_LOG_FORMAT: LogFormat = 'json';

/** Level words, upstream POLKU's (Rust `tracing`: `warning`, `off`) beside pino's. Compared lower-cased. */
const LEVEL_WORDS: ReadonlyMap<string, LevelWithSilent> = new Map<string, LevelWithSilent>([
  ['trace', 'trace'],
  ['debug', 'debug'],
  ['info', 'info'],
  ['warn', 'warn'],
  ['warning', 'warn'],
  ['error', 'error'],
  ['fatal', 'fatal'],
  ['silent', 'silent'],
  ['off', 'silent'],
  ['none', 'silent'],
]);

/** The forms {@link parseLogLevel} takes, for the error that refuses any other. */
export const LOG_LEVEL_FORMS =
  'trace, debug, info, warn (or warning), error, fatal, silent (or off, none), in any case, ' +
  'or a filter like info,module=debug or polku=debug,h2=warn (the first bare level, else the one for polku)';

/** Upstream's crate names: `polku`, `polku_gateway`, `polku-gateway::hub`... */
const POLKU_TARGET = /^polku(?:[_-][A-Za-z0-9_]+)?(?:::.*)?$/;

/**
 * Reads a log level as upstream POLKU took it: a level word in any case (`INFO`, `Debug`,
 * `warning`, `off`), or a `RUST_LOG`-style filter (`info,module=debug`, `polku=debug,h2=warn`).
 * A filter gives the first bare level; with none, the level for a `polku` target; with neither,
 * the default (`info`). Undefined when any part is not a level or `target=level`.
 */
export function parseLogLevel(raw: string): LevelWithSilent | undefined {
  const directives = raw
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '');
  if (directives.length === 0) return undefined;
  let bare: LevelWithSilent | undefined;
  let forPolku: LevelWithSilent | undefined;
  for (const directive of directives) {
    const eq = directive.indexOf('=');
    const level = LEVEL_WORDS.get(
      directive
        .slice(eq + 1)
        .trim()
        .toLowerCase(),
    );
    if (level === undefined) return undefined;
    if (eq < 0) {
      bare ??= level;
      continue;
    }
    const target = directive.slice(0, eq).trim();
    if (!/^[A-Za-z0-9_:.-]+$/.test(target)) return undefined;
    if (POLKU_TARGET.test(target)) forPolku ??= level;
  }
  return bare ?? forPolku ?? DEFAULT_LOG_LEVEL;
}

/**
 * The root logger: JSON lines on stderr (no worker-thread transport inside a pod), or with
 * `format: 'pretty'` the same records as readable lines, formatted on the logging thread and
 * written synchronously (nothing is lost at `process.exit`). Components take
 * `logger.child({ component })`; untrusted values go under nested keys, never at the top level.
 *
 * Stderr, not stdout: stdout belongs to events (the stdout emitter), so `polku serve | jq` and a
 * collector reading the container's stdout see events alone. pino's own stdout default writes
 * through an asynchronous SonicBoom that is flushed at exit; the stderr one is built the same way.
 */
export function createLogger(
  level: LevelWithSilent = DEFAULT_LOG_LEVEL,
  destination?: NodeJS.WritableStream,
  format: LogFormat = DEFAULT_LOG_FORMAT,
): Logger {
  const options = { level, base: { service: 'polku' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'pretty') {
    const out: { write(s: string): unknown } = destination ?? pino.destination({ dest: 2, sync: true });
    const pretty: DestinationStream = { write: (line: string) => void out.write(prettyLine(line)) };
    return pino(options, pretty);
  }
  return pino(options, destination ?? pino.destination({ dest: 2 }));
}

const LEVEL_LABELS: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * One JSON log line as a person reads it: `time LEVEL [component] message key=value ...`, an
 * error's stack indented below. Text that is not a JSON object passes through unchanged.
 */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  if (record === null || typeof record !== 'object') return json.endsWith('\n') ? json : `${json}\n`;
  const { time, level, msg, component, err, service: _service, ...rest } = record;
  const label = LEVEL_LABELS[level as number] ?? String(level);
  let line = `${String(time ?? '')} ${label.padEnd(5)}${component === undefined ? '' : ` [${String(component)}]`} ${String(msg ?? '')}`;
  for (const [key, value] of Object.entries(rest)) line += ` ${key}=${shown(value)}`;
  if (err !== null && typeof err === 'object') {
    const e = err as { type?: string; message?: string; stack?: string };
    line += `\n    ${(e.stack ?? `${e.type ?? 'Error'}: ${e.message ?? ''}`).split('\n').join('\n    ')}`;
  }
  return `${line}\n`;
}

function shown(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** A logger that discards everything, for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Logs a task that fails on every run of a timer (a full disk under the log's maintenance, once a
 * second) without a line per run: the first failure, then at most one line per `everyMs` with the
 * count of failed runs, and one line when the task succeeds again.
 */
export class RepeatedFailureLog {
  private failedRuns = 0;
  private loggedAtMs = 0;

  constructor(
    private readonly log: Logger,
    private readonly what: string,
    private readonly nowMs: () => number,
    private readonly everyMs = 60_000,
  ) {}

  failed(err: unknown): void {
    this.failedRuns++;
    const now = this.nowMs();
    if (this.failedRuns > 1 && now - this.loggedAtMs < this.everyMs) return;
    this.loggedAtMs = now;
    this.log.error({ err, failedRuns: this.failedRuns }, `${this.what} failed`);
  }

  succeeded(): void {
    if (this.failedRuns === 0) return;
    this.log.info({ failedRuns: this.failedRuns }, `${this.what} succeeds again`);
    this.failedRuns = 0;
  }
}
