import { didYouMean } from './did-you-mean.js';
import { ENV_TABLE } from './env-table.js';

/**
 * `POLKU_*` variables read outside the gateway's table: by the CLI's client commands
 * (`POLKU_ADMIN_ADDR`), by plugins built with the SDK (`POLKU_PLUGIN_TOKEN`), and by agents told
 * where the gateway is (`POLKU_ADDR`, the chart's NOTES), which may share a pod's environment.
 */
const READ_ELSEWHERE: readonly string[] = ['POLKU_ADDR', 'POLKU_ADMIN_ADDR', 'POLKU_PLUGIN_TOKEN'];

/** One `POLKU_*` variable the gateway does not read, and the known name it most resembles. */
export interface UnknownVariable {
  readonly name: string;
  /** A known name a typo away (edit distance at most 2, or 3 from 16 characters on), if one is. */
  readonly didYouMean: string | undefined;
}

/**
 * The `POLKU_*` variables in `env` that no part of POLKU reads, in name order. Not an error:
 * a setting of upstream POLKU's, or of a newer version, must not stop a rollout; `polku serve`
 * logs one warning for each.
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): UnknownVariable[] {
  const known = new Set<string>([...Object.values(ENV_TABLE).map((v) => v.name), ...READ_ELSEWHERE]);
  const unknown: UnknownVariable[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('POLKU_') || known.has(name)) continue;
    unknown.push({ name, didYouMean: didYouMean(name, known) });
  }
  return unknown;
}
