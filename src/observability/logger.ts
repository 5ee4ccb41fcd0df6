import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
/** The level without POLKU_LOG_LEVEL. */
export const DEFAULT_LOG_LEVEL: LevelWithSilent = 'info';

/**
 * The root logger: JSON lines on stdout (no worker-thread transport inside a pod). Components take
 * `logger.child({ component })`; untrusted values go under nested keys, never at the top level.
 */
export function createLogger(level: LevelWithSilent = DEFAULT_LOG_LEVEL, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { service: 'polku' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
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
