import type { IncomingMessage } from 'node:http';
import { eventToJson } from '../emit/event-json.js';
import type { DeadLetter } from '../buffer/durable/durable-store.js';
import type { DurableAdmin } from '../delivery/durable-admin.js';
import { polkuError, type ErrorCode } from '../errors.js';
import { AdminAccess } from './admin-access.js';

const OPEN_TO_LOOPBACK = new AdminAccess(undefined);

export interface AdminAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * `/admin/...` on the metrics listener, for `polku dlq` and `polku replay`. They change state, so
 * they answer only callers on the same host (loopback), and with POLKU_ADMIN_TOKEN set only those
 * sending it: in a pod, `kubectl exec` and run the CLI.
 *
 * - `GET    /admin/dead-letters?limit=N`   the dead letters, oldest first
 * - `GET    /admin/dead-letters/ID`        one dead letter (404 when there is none)
 * - `POST   /admin/dead-letters/replay`    send every dead letter to its emitter again
 * - `DELETE /admin/dead-letters`           forget them
 * - `POST   /admin/replay?from=T&to=T[&emitter=NAME]`  re-send the events received between two
 *   times (RFC 3339 or epoch milliseconds), still in the log, to their emitters
 * - `GET    /admin/plugins`                the live plugin table (`polku plugins`), in any mode
 */
export async function adminRoute(
  req: IncomingMessage,
  url: URL,
  admin: DurableAdmin | null,
  plugins?: () => Promise<unknown>,
  access: AdminAccess = OPEN_TO_LOOPBACK,
): Promise<AdminAnswer> {
  const refused = access.check(req.socket.remoteAddress, req.headers.authorization, 'admin endpoints');
  if (refused) return { status: refused.httpStatus, body: { error: refused.message } };
  if (url.pathname === '/admin/plugins') {
    if (req.method !== 'GET') return { status: 405, body: { error: 'GET /admin/plugins only' } };
    if (!plugins) return { status: 404, body: { error: 'this gateway keeps no plugin table' } };
    return { status: 200, body: { plugins: await plugins() } };
  }
  if (!admin) return refuse('POLKU_ERR_ADMIN_NOT_DURABLE');
  const route = `${req.method} ${url.pathname}`;
  const one = /^\/admin\/dead-letters\/(\d+)$/.exec(url.pathname);
  if (one) {
    if (req.method !== 'GET') return { status: 405, body: { error: 'GET /admin/dead-letters/ID only' } };
    const letter = await admin.inspectDeadLetter(Number(one[1]));
    if (!letter) return refuse('POLKU_ERR_ADMIN_NOT_FOUND', one[1]);
    return { status: 200, body: deadLetterJson(letter) };
  }
  switch (route) {
    case 'GET /admin/dead-letters': {
      const limit = Number(url.searchParams.get('limit') ?? '1000');
      if (!Number.isInteger(limit) || limit <= 0) return refuse('POLKU_ERR_ADMIN_INVALID', 'limit must be a positive integer');
      const letters = await admin.listDeadLetters(limit);
      return {
        status: 200,
        body: { deadLetters: letters.map(deadLetterJson) },
      };
    }
    case 'POST /admin/dead-letters/replay':
      return { status: 200, body: await admin.replayDeadLetters() };
    case 'DELETE /admin/dead-letters':
      return { status: 200, body: { purged: await admin.purgeDeadLetters() } };
    case 'POST /admin/replay': {
      const from = parseTime(url.searchParams.get('from'));
      const to = parseTime(url.searchParams.get('to'));
      if (from === undefined || to === undefined || from > to) {
        return refuse('POLKU_ERR_ADMIN_INVALID', 'from and to must be times (RFC 3339 or epoch ms) with from <= to');
      }
      const emitter = url.searchParams.get('emitter') ?? undefined;
      try {
        return { status: 200, body: await admin.replay({ fromMs: from, toMs: to, ...(emitter ? { emitter } : {}) }) };
      } catch (err) {
        return refuse('POLKU_ERR_ADMIN_INVALID', (err as Error).message);
      }
    }
    default:
      return { status: 404, body: { error: `no admin route ${route}` } };
  }
}

/**
 * An admin refusal answered with the catalogue's HTTP status for `code`, the same code polku.v1.Admin
 * answers with its gRPC status. (405 and an unknown route stay plain HTTP: they are about the URL.)
 */
function refuse(code: ErrorCode, ...args: unknown[]): AdminAnswer {
  const err = polkuError(code, ...args);
  return { status: err.httpStatus, body: { error: err.message } };
}

function deadLetterJson(d: DeadLetter & { id: number }): unknown {
  return {
    id: d.id,
    seq: d.seq,
    emitter: d.emitter,
    reason: d.reason,
    attempts: d.attempts,
    deadAt: new Date(d.deadAtMs).toISOString(),
    targets: d.targets,
    event: eventToJson(d.event),
  };
}

function parseTime(raw: string | null): number | undefined {
  if (raw === null || raw === '') return undefined;
  if (/^\d+$/.test(raw)) return Number(raw);
  const ms = Date.parse(raw);
  return Number.isNaN(ms) ? undefined : ms;
}
