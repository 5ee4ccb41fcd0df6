import type { IncomingMessage, ServerResponse } from 'node:http';
import { polkuError, type PolkuError } from '../errors.js';
import { parseMetadataFilter, type TapSpec, type TapStage, type Taps } from '../hub/taps.js';
import type { AdminAccess } from './admin-access.js';

/** Most events one tap may ask for; a reader wanting more opens another. */
export const MAX_TAP_LIMIT = 1_000_000;

/**
 * Reads `GET /admin/tap?at=ingest|middleware|emitter:NAME&source=S&type=PREFIX&meta=K=V&limit=N`
 * into a tap spec, or the refusal naming the parameter that is wrong.
 */
export function tapSpecOf(url: URL, emitters: readonly string[]): TapSpec | PolkuError {
  const q = url.searchParams;
  const known = new Set(['at', 'source', 'type', 'meta', 'limit']);
  for (const name of q.keys()) {
    if (!known.has(name)) return polkuError('POLKU_ERR_ADMIN_INVALID', `unknown tap parameter "${name}" (at, source, type, meta, limit)`);
  }
  const at = q.get('at') ?? 'middleware';
  let stage: TapStage;
  let emitter: string | undefined;
  if (at === 'ingest' || at === 'middleware') stage = at;
  else if (at.startsWith('emitter:')) {
    stage = 'emitter';
    emitter = at.slice('emitter:'.length);
    if (!emitters.includes(emitter)) {
      return polkuError(
        'POLKU_ERR_ADMIN_INVALID',
        `at=emitter:${emitter}: no emitter of that name runs (running: ${emitters.join(', ') || 'none'})`,
      );
    }
  } else return polkuError('POLKU_ERR_ADMIN_INVALID', `at must be ingest, middleware or emitter:NAME, got "${at}"`);
  const rawLimit = q.get('limit') ?? '0';
  const limit = Number(rawLimit);
  if (!/^\d+$/.test(rawLimit) || limit > MAX_TAP_LIMIT) {
    return polkuError('POLKU_ERR_ADMIN_INVALID', `limit must be an integer from 0 (no limit) to ${MAX_TAP_LIMIT}, got "${rawLimit}"`);
  }
  const rawMeta = q.get('meta');
  const metadata = rawMeta === null ? undefined : parseMetadataFilter(rawMeta);
  if (rawMeta !== null && !metadata) return polkuError('POLKU_ERR_ADMIN_INVALID', `meta must be KEY=VALUE, got "${rawMeta}"`);
  return {
    stage,
    emitter,
    limit,
    filter: { source: q.get('source') ?? undefined, typePrefix: q.get('type') ?? undefined, metadata },
  };
}

/**
 * `GET /admin/tap`: a live sample of events as NDJSON, one EventJson per line, plus control lines
 * under `polku_tap` (open, dropped N, end). Guarded like `/admin/*`. The response stays open until
 * the limit is reached, the reader leaves, or the gateway stops.
 */
export function serveTap(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  taps: Taps,
  emitters: readonly string[],
  access: AdminAccess,
): void {
  const refusal = access.check(req.socket.remoteAddress, req.headers.authorization, 'admin endpoints');
  if (refusal) return json(res, refusal.httpStatus, { error: refusal.message });
  if (req.method !== 'GET') return json(res, 405, { error: 'GET /admin/tap only' });
  const spec = tapSpecOf(url, emitters);
  if (spec instanceof Error) return json(res, spec.httpStatus, { error: spec.message });
  if (!taps.hasRoom) {
    const busy = polkuError('POLKU_ERR_ADMIN_BUSY', `${taps.maxReaders} taps are open already; close one and try again`);
    return json(res, busy.httpStatus, { error: busy.message });
  }
  // Headers before the reader's first line (`open`).
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store' });
  const reader = taps.open(spec, {
    write: (line) => res.write(`${line}\n`),
    onDrain: (resume) => res.once('drain', resume),
    end: () => res.end(),
  })!;
  // A quiet tap is not an idle connection: the port's idle timeout would cut it.
  req.socket.setTimeout(0);
  res.on('close', () => reader.close('reader_left'));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
