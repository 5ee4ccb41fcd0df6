import { parseArgs } from 'node:util';
import { loadPg } from '../emit/postgres.js';
import { DEFAULT_POSTGRES_TABLE, defaultTableDdl } from '../emit/postgres-sql.js';
import { polkuError } from '../errors.js';
import { ownArgsCommand, type Command } from './command.js';

export const SINKS_USAGE = `polku sinks init postgres --connection postgres://user@host:5432/db [--table ${DEFAULT_POSTGRES_TABLE}] [--print]
    create the PostgresEmitter's default table (CREATE TABLE IF NOT EXISTS); --print shows the SQL and connects nowhere`;

/**
 * `polku sinks init postgres …`: prepares a destination for its emitter. Prints what it did and
 * returns the exit status (0 done, 1 the server refused, 2 usage).
 */
export async function runSinks(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      connection: { type: 'string' },
      table: { type: 'string', default: DEFAULT_POSTGRES_TABLE },
      print: { type: 'boolean', default: false },
    },
  });
  if (positionals[0] !== 'init' || positionals[1] !== 'postgres' || positionals.length !== 2) {
    console.error(`polku sinks: expected "init postgres", got ${JSON.stringify(positionals.join(' '))}\n\n${SINKS_USAGE}`);
    return 2;
  }
  const ddl = defaultTableDdl(values.table); // checks the name before anything connects
  if (values.print) {
    console.log(`${ddl};`);
    return 0;
  }
  if (values.connection === undefined)
    throw polkuError('POLKU_ERR_CLI_USAGE', `polku sinks init postgres needs --connection\n\n${SINKS_USAGE}`);
  const pg = await loadPg();
  const client = new pg.Client({ connectionString: values.connection, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.query(ddl);
  } catch (err) {
    const code = (err as { code?: string }).code;
    console.error(`polku sinks: PostgreSQL${code ? ` ${code}` : ''}: ${(err as Error).message}`);
    return 1;
  } finally {
    await client.end().catch(() => undefined);
  }
  console.log(`table ${values.table} is ready (created, or it already existed)`);
  return 0;
}

/** `polku sinks` in the command table (it reads its own arguments). */
export const sinksCommand: Command = ownArgsCommand(
  'sinks',
  "prepare a destination for its emitter (PostgreSQL's default table)",
  'init postgres --connection URL [--table NAME] [--print]',
  (args) => runSinks(args),
  SINKS_USAGE,
);
