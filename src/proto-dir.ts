import { fileURLToPath } from 'node:url';

/** The proto files shipped with the package (proto/ beside src/ and dist/), for server reflection. */
export const PROTO_DIR = fileURLToPath(new URL('../proto', import.meta.url));

/** The path of one of the package's own proto files, e.g. `polkuProto('gateway')`. */
export function polkuProto(name: 'gateway' | 'plugin' | 'admin' | 'event'): string {
  return `${PROTO_DIR}/polku/v1/${name}.proto`;
}
