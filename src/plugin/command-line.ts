import { parseArgs } from 'node:util';
import type { PluginOptions } from './options.js';

/** The part of the options a plugin's command line sets. */
export type CommandLineOptions = Pick<PluginOptions, 'host' | 'port' | 'register'>;

/**
 * Reads the usual plugin flags, to spread into `serveEmitter`/`serveIngestor` options:
 *
 * - `--port <n>` (default: the options' own, else 0 = any free port), `--host <ip>`
 * - `--register <gateway host:port>`: self-register with that gateway
 * - `--advertise <host:port>`: the address the gateway should dial (default `127.0.0.1:<port>`)
 * - the registration token comes from the environment variable `POLKU_PLUGIN_TOKEN`, never a
 *   flag (flags show up in `ps`).
 *
 * Other flags are left alone for the plugin to read. A malformed `--port` throws.
 */
export function commandLineOptions(
  argv: readonly string[] = process.argv.slice(2),
  env: Readonly<Record<string, string | undefined>> = process.env,
): CommandLineOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      register: { type: 'string' },
      advertise: { type: 'string' },
    },
  });
  const out: CommandLineOptions = {};
  const str = (v: unknown, flag: string): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') throw new TypeError(`--${flag} needs a value`);
    return v;
  };
  const port = str(values.port, 'port');
  if (port !== undefined) {
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65_535) throw new RangeError(`--port must be 0-65535, got ${port}`);
    out.port = Number(port);
  }
  const host = str(values.host, 'host');
  if (host !== undefined) out.host = host;
  const gateway = str(values.register, 'register');
  const advertise = str(values.advertise, 'advertise');
  if (gateway !== undefined) {
    out.register = { gateway };
    if (advertise !== undefined) out.register.advertise = advertise;
    const token = env['POLKU_PLUGIN_TOKEN'];
    if (token) out.register.token = token;
  }
  return out;
}
