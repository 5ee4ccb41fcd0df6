import type { LevelWithSilent } from 'pino';
import { LOG_LEVEL_FORMS, parseLogLevel } from '../observability/logger.js';
import { allowlistProblems } from '../registry/allowlist.js';

/** A listen address, as POLKU_GRPC_ADDR and POLKU_METRICS_ADDR give it. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** What is wrong with a value; the reader prefixes it with `NAME="value": `. */
export class EnvProblem {
  constructor(readonly message: string) {}
}

/** How one kind of variable is read and how its default is shown. */
export interface EnvParser<T> {
  /** Reads a trimmed, non-empty value; blank values never get here (they mean "unset"). */
  parse(raw: string): T | EnvProblem;
  /** The default as `polku --help` and the README show it. */
  show(value: T): string;
}

/** A whole number of at least `min`: digits only, so `-1`, `1.5` and `1e6` are refused. */
export function wholeNumber(min: number): EnvParser<number> {
  const problem = new EnvProblem(`must be a whole number (${min} or more)`);
  return {
    parse(raw) {
      if (!/^\d+$/.test(raw)) return problem;
      const n = Number(raw);
      return Number.isSafeInteger(n) && n >= min ? n : problem;
    },
    show: String,
  };
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(allowed: readonly T[]): EnvParser<T> {
  return {
    parse: (raw) => ((allowed as readonly string[]).includes(raw) ? (raw as T) : new EnvProblem(`must be one of ${allowed.join(', ')}`)),
    show: (value) => value,
  };
}

/** A switch spelled with two words (`true`/`false`, `on`/`off`), listed in the error as given. */
export function flag(yes: string, no: string): EnvParser<boolean> {
  const words = oneOf([yes, no]);
  return {
    parse(raw) {
      const word = words.parse(raw);
      return word instanceof EnvProblem ? word : word === yes;
    },
    show: (value) => (value ? yes : no),
  };
}

/** Text taken as written (trimmed). */
export const text: EnvParser<string> = { parse: (raw) => raw, show: (value) => value };

/** Text that may be absent: unset or blank is `undefined`. */
export const optionalText: EnvParser<string | undefined> = { parse: (raw) => raw, show: (value) => value ?? '' };

/** A comma-separated list; blank entries are skipped. */
export const list: EnvParser<readonly string[]> = { parse: splitList, show: (value) => value.join(',') };

/** POLKU_LOG_LEVEL: a level in any case, upstream's words (`warning`, `off`), or a `RUST_LOG`-style filter. */
export const logLevel: EnvParser<LevelWithSilent> = {
  parse: (raw) => parseLogLevel(raw) ?? new EnvProblem(`must be one of ${LOG_LEVEL_FORMS}`),
  show: (value) => value,
};

/** The shape the gRPC emitter takes: `host:port`, `http://host:port` or `https://host:port`. */
const ENDPOINT = /^(https?:\/\/)?[^/\s,]+:(\d{1,5})$/;

/** Downstream gateways to forward to: a comma-separated list of endpoints, each once. */
export const grpcEndpoints: EnvParser<readonly string[]> = {
  parse(raw) {
    const entries = splitList(raw);
    const bad = entries.filter((e) => {
      const m = ENDPOINT.exec(e);
      return !m || Number(m[2]) === 0 || Number(m[2]) > 65535;
    });
    if (bad.length > 0) {
      return new EnvProblem(
        `${bad.map((b) => JSON.stringify(b)).join(', ')} is not host:port, http://host:port or https://host:port (port 1-65535)`,
      );
    }
    const twice = entries.find((e, i) => entries.indexOf(e) !== i);
    if (twice !== undefined) return new EnvProblem(`${JSON.stringify(twice)} is listed twice`);
    return entries;
  },
  show: (value) => value.join(','),
};

/** `host:port`, `[v6]:port` or `:port`. */
export const listenAddress: EnvParser<ListenAddress> = {
  parse: (raw) => parseAddress(raw) ?? new EnvProblem('must be host:port, e.g. 0.0.0.0:50051'),
  show: formatAddress,
};

/** The registry's allowlist: at least one CIDR, IP address, host name or `*.suffix`. */
export const allowlist: EnvParser<readonly string[]> = {
  parse(raw) {
    const entries = splitList(raw);
    if (entries.length === 0) return new EnvProblem('must list at least one CIDR, IP address or host name');
    const bad = allowlistProblems(entries);
    return bad.length === 0
      ? entries
      : new EnvProblem(`${bad.map((b) => JSON.stringify(b)).join(', ')} is not a CIDR, an IP address or a host name`);
  },
  show: (value) => value.join(','),
};

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
}

/** Parses `host:port`, `[v6]:port` or `:port`; undefined when it is none of them. */
export function parseAddress(raw: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(raw);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** Formats an address for grpc-js and logs (`[::1]:50051` for IPv6). */
export function formatAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** A listen address, or `off` (undefined): for ports that may be turned off (POLKU_OTLP_*_ADDR). */
export const listenAddressOrOff: EnvParser<ListenAddress | undefined> = {
  parse: (raw) => (raw === 'off' ? undefined : (parseAddress(raw) ?? new EnvProblem('must be host:port (e.g. 0.0.0.0:4317) or off'))),
  show: (value) => (value === undefined ? 'off' : formatAddress(value)),
};
