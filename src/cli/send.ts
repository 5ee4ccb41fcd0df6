import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { polkuError } from '../errors.js';
import { dialCredentials, type DialTlsOptions } from '../security/tls.js';
import { Event } from '../gen/polku/v1/event.js';
import { Ack, GatewayClient, type IngestEvent } from '../gen/polku/v1/gateway.js';

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
}

/**
 * `polku send`: sends one test event, or a file of JSON events (an array, one object or NDJSON),
 * with SendEvent and returns the Ack as JSON text. `ok` is false when anything was refused.
 */
export async function send(o: SendOptions): Promise<{ ok: boolean; output: string }> {
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
    const ack = trailer instanceof Buffer ? `\n${renderAck(Ack.decode(trailer))}` : '';
    return { ok: false, output: `gRPC error ${e.code ?? ''} (${e.details ?? e.message})${ack}` };
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

async function fileRequest(o: SendOptions): Promise<IngestEvent> {
  const data = await readFile(o.file!);
  const format = o.format ?? (['.ndjson', '.jsonl'].includes(extname(o.file!)) ? 'ndjson' : 'json');
  return { source: o.source, cluster: '', payload: { $case: 'raw', value: data }, format };
}

/** The Ack as proto3 JSON (camelCase names, 64-bit numbers as strings). */
export function renderAck(ack: Ack): string {
  return JSON.stringify(ack, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}
