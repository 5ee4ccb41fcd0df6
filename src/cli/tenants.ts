import { polkuError } from '../errors.js';
import { ownArgsCommand, type Command } from './command.js';
import { hashKey } from '../tenants/api-key.js';

const USAGE = 'polku tenants hash-key <key>   (or the key on stdin: printf %s "$KEY" | polku tenants hash-key)';

/**
 * `polku tenants hash-key [KEY]`: prints the `sha256:` digest to put in a tenant's `apiKeys`.
 * Without an argument the key is read from stdin (one trailing newline dropped), so it need not
 * appear in the shell's history or the process list. Returns the exit status.
 */
export async function runTenants(args: readonly string[], stdin: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'hash-key' || rest.length > 1) throw polkuError('POLKU_ERR_CLI_USAGE', `usage: ${USAGE}`);
  const key = rest[0] ?? (await readKey(stdin));
  if (key === '') throw polkuError('POLKU_ERR_CLI_USAGE', `the key is empty; usage: ${USAGE}`);
  console.log(hashKey(key));
  return 0;
}

async function readKey(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** `polku tenants` in the command table (it reads its own arguments). */
export const tenantsCommand: Command = ownArgsCommand(
  'tenants',
  "a tenant API key's sha256: digest (the key from stdin without KEY)",
  'hash-key [KEY]',
  (args) => runTenants(args),
  USAGE,
);
