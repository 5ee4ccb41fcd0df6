import { polkuError, type PolkuError } from '../errors.js';

/** `host:port` where host is a name or IPv4 address, or `[v6]:port`; nothing before or after. */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?):(\d{1,5})$/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/**
 * Turns a plugin address as configured into the grpc-js target `host:port`. Accepted:
 * `host:port`, `http://host:port` and `[::1]:port` (IPv6 in brackets, with or without `http://`).
 * `https://` is refused (TLS comes from POLKU_PLUGIN_TLS_* or a component's `tls` option, not the
 * address); anything else that is not exactly a host
 * and a port in 1–65535 is refused too. Errors name the plugin: they surface when the pipeline is
 * built, not when the first event arrives.
 */
export function pluginTarget(plugin: string, address: string): string {
  const bad = (why: string): PolkuError =>
    polkuError('POLKU_ERR_PIPELINE_INVALID', `plugin "${plugin}": address ${JSON.stringify(address)} ${why}`);
  if (typeof address !== 'string' || address.trim() === '') throw bad('is empty: give host:port or http://host:port');
  let rest = address;
  const scheme = SCHEME.exec(address);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (name === 'https') {
      throw bad('uses https://, which is not supported in an address: give host:port; TLS comes from POLKU_PLUGIN_TLS_* or the tls option');
    }
    if (name !== 'http') throw bad(`has the unsupported scheme ${name}://: use host:port or http://host:port`);
    rest = address.slice(scheme[0].length);
  }
  if (rest.endsWith('/')) rest = rest.slice(0, -1); // "http://host:port/" is a common way to write it
  const match = HOST_PORT.exec(rest);
  if (!match) {
    if (/^[0-9A-Fa-f]*:[0-9A-Fa-f]*:/.test(rest)) throw bad('looks like an IPv6 address without brackets: write [::1]:port');
    throw bad('is not host:port or http://host:port');
  }
  const port = Number(match[2]);
  if (port < 1 || port > 65_535) throw bad(`has port ${match[2]}, which is not in 1-65535`);
  return `${match[1]}:${port}`;
}

/** Checks a timeout or limit option: a positive number (an integer when `integer`). */
export function checkPositive(plugin: string, option: string, value: number, integer = false): void {
  const ok = typeof value === 'number' && Number.isFinite(value) && value > 0 && (!integer || Number.isSafeInteger(value));
  if (!ok) {
    throw polkuError(
      'POLKU_ERR_PIPELINE_INVALID',
      `plugin "${plugin}": ${option} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`,
    );
  }
}
