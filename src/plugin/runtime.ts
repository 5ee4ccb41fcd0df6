/**
 * The two things a plugin borrows from its host process: a place to log and a way to wait.
 * Both are plain interfaces so plugin authors (and tests) can pass their own; the SDK depends on
 * no logging library and reads no clock.
 */

/** Console-compatible logger: `console` itself works, so do pino and winston loggers. */
export interface PluginLogger {
  /** Lifecycle milestones: listening, registered, shutting down. */
  info(message: string, ...details: unknown[]): void;
  /** Something went wrong and the SDK is retrying or carrying on (gateway unreachable, lease lost). */
  warn(message: string, ...details: unknown[]): void;
  /** A handler the plugin author wrote threw; the SDK answered the gateway anyway. */
  error(message: string, ...details: unknown[]): void;
}

/** Logs nothing: the default, so a library never writes to a process's stdout unasked. */
export const silentLogger: PluginLogger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};

/**
 * Timers the SDK waits with (registration backoff, heartbeats, the close deadline). Tests pass
 * fake ones and move time by hand; the handle is opaque to the SDK.
 */
export interface PluginTimers {
  /** Runs `fn` once after `ms` milliseconds; returns a handle for {@link clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer that has not run yet; a handle that already ran is ignored. */
  clearTimeout(handle: unknown): void;
}

/** Real timers, unref'd: a pending heartbeat never keeps a process alive on its own. */
export const systemTimers: PluginTimers = {
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** The message of whatever was thrown: an Error's message, otherwise the value as a string. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return typeof err === 'string' ? err : String(err);
}
