import { fileURLToPath } from 'node:url';

/** The proto files shipped with the package (proto/ beside src/ and dist/), for server reflection. */
export const PROTO_DIR = fileURLToPath(new URL('../proto', import.meta.url));

/** The path of one of the package's own proto files, e.g. `polkuProto('gateway')`. */
export function polkuProto(name: 'gateway' | 'plugin' | 'admin' | 'event'): string {
  return `${PROTO_DIR}/polku/v1/${name}.proto`;
}

/** The path of an agent's own wire format shipped with the package, e.g. `agentProto('portti')` (proto/portti/v1/raw.proto). */
export function agentProto(agent: 'tapio' | 'elava' | 'portti'): string {
  return `${PROTO_DIR}/${agent}/v1/raw.proto`;
}
