import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { DEFAULT_GRPC_ADDR } from '../config/env-table.js';
import { polkuError } from '../errors.js';
import { flag, flags, printResult, type CliResult, type Command } from './command.js';
import { dialCredentials, type DialTlsOptions } from '../security/tls.js';
import { Event } from '../gen/polku/v1/event.js';
import { Ack, GatewayClient, type IngestEvent } from '../gen/polku/v1/gateway.js';

/** Where `polku send` dials without --addr: a gateway on this host, at its default port. */
const SEND_ADDR = `localhost:${DEFAULT_GRPC_ADDR.port}`;

export interface SendOptions {
  addr: string;
  source: string;
  type: string;
  payload?: string;
  metadata: string[];
  routeTo: string[];
  file?: string;
  format?: string;
  timeoutMs: number;
  /** Dial with TLS: the CA to trust, and a client certificate for mTLS. */
  tls?: DialTlsOptions;
  /** Where `--file -` reads from (process.stdin). */
  stdin?: NodeJS.ReadableStream;
}

/** What `polku send` prints: the Ack on stdout; `error` on stderr when the call failed. */
export type SendResult = CliResult;

/**
 * `polku send`: sends one test event, or a file of JSON events (an array, one object or NDJSON),
 * with SendEvent and returns the Ack as JSON text. `ok` is false when anything was refused.
 */
export async function send(o: SendOptions): Promise<SendResult> {
  const request = o.file ? await fileRequest(o) : eventRequest(o);
  if (o.tls && (o.tls.certFile === undefined) !== (o.tls.keyFile === undefined))
    throw polkuError('POLKU_ERR_CLI_USAGE', 'polku send wants --cert and --key together');
  const dial = dialCredentials('polku send', o.tls, 'POLKU_ERR_CLI_USAGE', { cert: '--cert', key: '--key', ca: '--ca' });
  const client = new GatewayClient(o.addr.replace(/^https?:\/\//, ''), dial.credentials, dial.channelOptions);
  try {
    const ack = await new Promise<Ack>((resolve, reject) => {
      client.sendEvent(request, new Metadata(), { deadline: Date.now() + o.timeoutMs }, (err, response) =>
        err ? reject(err) : resolve(response),
      );
    });
    return { ok: ack.errors.length === 0, output: renderAck(ack) };
  } catch (err) {
    const e = err as ServiceError;
    const trailer = e.metadata?.get('polku-ack-bin')[0];
    if (trailer instanceof Buffer) {
      return { ok: false, output: renderAck(Ack.decode(trailer)), error: `gRPC error ${e.code} (${e.details ?? e.message})` };
    }
    return { ok: false, output: '', error: callFailure(o.addr, e) };
  } finally {
    client.close();
  }
}

function eventRequest(o: SendOptions): IngestEvent {
  const metadata: Record<string, string> = {};
  for (const pair of o.metadata) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw polkuError('POLKU_ERR_CLI_USAGE', `--metadata wants key=value, got "${pair}"`);
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const event = Event.fromPartial({
    source: o.source,
    eventType: o.type,
    metadata,
    routeTo: o.routeTo,
    payload: Buffer.from(o.payload ?? '', 'utf8'),
  });
  return { source: o.source, cluster: '', payload: { $case: 'event', value: event }, format: '' };
}

/** A failed call without an Ack, as one line that says what to do. */
function callFailure(addr: string, e: ServiceError): string {
  // The detail stays on a second line: 14 is also what a TLS gateway answers a plaintext or
  // certificate-less caller, and the detail is how the two are told apart.
  if (e.code === status.UNAVAILABLE) {
    return `no gateway at ${addr}: is \`polku serve\` running? (POLKU_GRPC_ADDR)\n  gRPC error 14 (${e.details ?? e.message})`;
  }
  if (e.code === status.DEADLINE_EXCEEDED) return `the gateway at ${addr} did not answer within --timeout-ms`;
  return `gRPC error ${e.code ?? ''} (${e.details ?? e.message})`;
}

async function fileRequest(o: SendOptions): Promise<IngestEvent> {
  const file = o.file!;
  const data = file === '-' ? await readAll(o.stdin ?? process.stdin) : await readNamedFile(file);
  const format = o.format ?? (file === '-' ? sniffFormat(data) : ['.ndjson', '.jsonl'].includes(extname(file)) ? 'ndjson' : 'json');
  return { source: o.source, cluster: '', payload: { $case: 'raw', value: data }, format };
}

async function readNamedFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'a directory, not a file' : (e.code ?? e.message);
    throw polkuError('POLKU_ERR_CLI_USAGE', `cannot read --file ${file}: ${why}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/**
 * Standard input has no file name to go by: a document that parses as one JSON value (an object,
 * an array) is `json`, anything else is taken as NDJSON (whose bad lines the Ack then names).
 */
function sniffFormat(data: Buffer): string {
  try {
    JSON.parse(data.toString('utf8'));
    return 'json';
  } catch {
    return 'ndjson';
  }
}

/** The Ack as proto3 JSON (camelCase names, 64-bit numbers as strings). */
export function renderAck(ack: Ack): string {
  return JSON.stringify(ack, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

/** `polku send`. */
export const sendCommand: Command = {
  name: 'send',
  summary: 'send a test event, or a file of JSON events, to a gateway and print the Ack',
  usage: '[--addr ADDR] [--type TYPE] [--payload TEXT] [--metadata k=v]... | --file FILE|-',
  description:
    'Exit 0 when every event was accepted, 1 when anything was refused or no gateway answered.\n' +
    'With --ca the call goes over TLS; with --cert and --key too, over mTLS.',
  flags: {
    addr: { type: 'string', default: SEND_ADDR, arg: 'ADDR', help: "the gateway's gRPC address (its POLKU_GRPC_ADDR)" },
    source: { type: 'string', default: 'polku-cli', arg: 'NAME', help: 'the source the events come from' },
    type: { type: 'string', default: 'polku.test', arg: 'TYPE', help: 'event_type of the test event' },
    payload: { type: 'string', arg: 'TEXT', help: 'payload of the test event' },
    metadata: { type: 'string', multiple: true, default: [], arg: 'k=v', help: 'a metadata entry of the test event' },
    'route-to': { type: 'string', multiple: true, default: [], arg: 'NAME', help: 'deliver only to this emitter route' },
    file: { type: 'string', arg: 'FILE', help: 'send JSON events from a file (an array, one object or NDJSON); - reads stdin' },
    format: { type: 'string', arg: 'json|ndjson', help: "the file's format (default: by extension; stdin: sniffed)" },
    'timeout-ms': { type: 'string', default: '5000', arg: 'MS', help: 'give up after this long' },
    ca: { type: 'string', arg: 'FILE', help: 'dial with TLS, trusting this CA' },
    cert: { type: 'string', arg: 'FILE', help: 'client certificate for mTLS (with --key)' },
    key: { type: 'string', arg: 'FILE', help: 'client key for mTLS (with --cert)' },
    'server-name': { type: 'string', arg: 'NAME', help: "the name the gateway's certificate must carry" },
  },
  async run({ values }) {
    const timeoutMs = Number(flag(values, 'timeout-ms'));
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
      throw polkuError('POLKU_ERR_CLI_USAGE', `--timeout-ms wants a whole number of milliseconds, got "${flag(values, 'timeout-ms')}"`);
    const [ca, cert, key, serverName] = [flag(values, 'ca'), flag(values, 'cert'), flag(values, 'key'), flag(values, 'server-name')];
    const tls =
      ca === undefined && cert === undefined && key === undefined
        ? undefined
        : { caFile: ca, certFile: cert, keyFile: key, ...(serverName === undefined ? {} : { serverName }) };
    const [payload, file, format] = [flag(values, 'payload'), flag(values, 'file'), flag(values, 'format')];
    const result = await send({
      addr: flag(values, 'addr')!,
      source: flag(values, 'source')!,
      type: flag(values, 'type')!,
      metadata: flags(values, 'metadata'),
      routeTo: flags(values, 'route-to'),
      timeoutMs,
      ...(payload === undefined ? {} : { payload }),
      ...(file === undefined ? {} : { file }),
      ...(format === undefined ? {} : { format }),
      ...(tls === undefined ? {} : { tls }),
    });
    return printResult(result);
  },
};
