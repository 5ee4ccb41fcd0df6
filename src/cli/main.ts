import { parseArgs } from 'node:util';
import { ENV_VARIABLES } from '../config/env.js';
import { DEFAULT_GRPC_ADDR, DEFAULT_METRICS_ADDR } from '../config/env-table.js';
import { isPolkuError } from '../errors.js';
import { adminCall, dlqRequest, replayRequest } from './admin.js';
import { pluginsCommand } from './plugins.js';
import { send } from './send.js';
import { serve } from './serve.js';
import { tenantsCommand } from './tenants.js';
import { sinksCommand } from './sinks.js';
import { validate } from './validate.js';
import { tapCommand } from './tap.js';
import { topCommand } from './top.js';
import { testCommand } from './test-command.js';

// The CLI talks to a gateway on this host, at the ports a gateway listens on by default.
const SEND_ADDR = `localhost:${DEFAULT_GRPC_ADDR.port}`;
const ADMIN_ADDR = `127.0.0.1:${DEFAULT_METRICS_ADDR.port}`;

const USAGE = `polku — event gateway

Usage:
  polku serve    [--config polku.config.ts]   run the gateway (embedded default pipeline without --config)
  polku validate [--config polku.config.ts]   load the environment and pipeline, report problems, do not serve;
                                              in durable mode also check the log (checksums, torn tail, cursors)
  polku send     [--addr ${SEND_ADDR}] [--source cli] [--type polku.test]
                 [--payload TEXT] [--metadata k=v]... [--route-to NAME]...
                 [--file events.json|events.ndjson [--format json|ndjson]]
                 [--ca ca.pem [--cert client.pem --key client-key.pem] [--server-name NAME]]
                                              send a test event (or a file of JSON events); print the Ack;
                                              with --ca over TLS (mTLS with --cert and --key)
  polku dlq      list [--limit N] | inspect ID | replay | purge [--admin ${ADMIN_ADDR}]
                                              durable mode: the dead letters of a running gateway
  polku replay   --from T --to T [--emitter NAME] [--admin ${ADMIN_ADDR}]
                                              durable mode: re-send events received between two times
  polku plugins  [--json] [--admin ${ADMIN_ADDR}]
                                              the live plugin table: static, registered and discovered
  polku tenants  hash-key [KEY]               a tenant API key's sha256: digest (the key from stdin without KEY)
  polku tap      [--at ingest|middleware|emitter:NAME] [--source S] [--type PREFIX] [--meta K=V] [--limit N]
                                              a live sample of events as NDJSON (never slows the gateway)
  polku top      [--interval MS] [--once]     live rates per ingestor, middleware and emitter; buffer, lag, drops
  polku test     MODULE --input INPUTS.ndjson --expect EXPECTED.ndjson
                                              run a module's ingest and middleware over inputs; compare the output

Environment (serve, validate):
${ENV_VARIABLES.map(([name, def, help]) => `  ${name.padEnd(27)} ${help} [${def}]`).join('\n')}
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
      await serve(values.config);
      return -1; // keeps running; signals decide the exit status
    }
    case 'validate': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
      console.log(await validate(values.config));
      return 0;
    }
    case 'send': {
      const { values } = parseArgs({
        args: rest,
        options: {
          addr: { type: 'string', default: SEND_ADDR },
          source: { type: 'string', default: 'polku-cli' },
          type: { type: 'string', default: 'polku.test' },
          payload: { type: 'string' },
          metadata: { type: 'string', multiple: true, default: [] },
          'route-to': { type: 'string', multiple: true, default: [] },
          file: { type: 'string' },
          format: { type: 'string' },
          'timeout-ms': { type: 'string', default: '5000' },
          ca: { type: 'string' },
          cert: { type: 'string' },
          key: { type: 'string' },
          'server-name': { type: 'string' },
        },
      });
      const tls =
        values.ca === undefined && values.cert === undefined && values.key === undefined
          ? undefined
          : {
              caFile: values.ca,
              certFile: values.cert,
              keyFile: values.key,
              ...(values['server-name'] === undefined ? {} : { serverName: values['server-name'] }),
            };
      const result = await send({
        addr: values.addr!,
        source: values.source!,
        type: values.type!,
        metadata: values.metadata!,
        routeTo: values['route-to']!,
        timeoutMs: Number(values['timeout-ms']),
        ...(values.payload === undefined ? {} : { payload: values.payload }),
        ...(values.file === undefined ? {} : { file: values.file }),
        ...(values.format === undefined ? {} : { format: values.format }),
        ...(tls === undefined ? {} : { tls }),
      });
      console.log(result.output);
      return result.ok ? 0 : 1;
    }
    case 'dlq':
    case 'replay': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          admin: { type: 'string', default: process.env['POLKU_ADMIN_ADDR'] ?? ADMIN_ADDR },
          limit: { type: 'string', default: '100' },
          from: { type: 'string' },
          to: { type: 'string' },
          emitter: { type: 'string' },
        },
      });
      const request =
        command === 'dlq'
          ? dlqRequest(positionals[0], values.limit!, positionals[1])
          : replayRequest(values.from, values.to, values.emitter);
      const result = await adminCall(values.admin!, request.method, request.path);
      console.log(result.output);
      return result.ok ? 0 : 1;
    }
    case 'plugins': {
      const { values } = parseArgs({
        args: rest,
        options: {
          admin: { type: 'string', default: process.env['POLKU_ADMIN_ADDR'] ?? ADMIN_ADDR },
          json: { type: 'boolean', default: false },
        },
      });
      const result = await pluginsCommand(values.admin!, values.json!);
      console.log(result.output);
      return result.ok ? 0 : 1;
    }
    case 'tenants':
      return tenantsCommand(rest); // polku tenants hash-key [KEY]: a key's sha256: digest
    case 'sinks':
      return sinksCommand(rest);
    case 'tap':
      return tapCommand(rest);
    case 'top':
      return topCommand(rest);
    case 'test':
      return testCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`polku: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (isPolkuError(err)) console.error(`polku: ${err.code}: ${err.message}`);
    else if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`polku: ${err.message}\n\n${USAGE}`);
    } else console.error('polku: unexpected error:', err);
    process.exitCode = isPolkuError(err) ? 1 : 70;
  },
);
