import { status, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { DeadLetter as StoredDeadLetter } from '../buffer/durable/durable-store.js';
import {
  AdminService,
  type DeadLetter,
  type InspectDeadLetterRequest,
  type ListDeadLettersRequest,
  type ListDeadLettersResponse,
  type PurgeDeadLettersResponse,
  type ReplayRequest,
  type ReplayResponse,
} from '../gen/polku/v1/admin.js';
import { isPolkuError, polkuError, type ErrorCode } from '../errors.js';
import type { DurableAdmin } from '../delivery/durable-admin.js';
import type { Logger } from '../observability/logger.js';
import { AdminAccess } from './admin-access.js';
import { isLoopbackAddress } from './loopback.js';

/** The catalogue's codes for Admin refusals; each is answered with its gRPC status from the catalogue. */
const ADMIN_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'POLKU_ERR_ADMIN_NOT_LOOPBACK',
  'POLKU_ERR_ADMIN_UNAUTHENTICATED',
  'POLKU_ERR_ADMIN_NOT_DURABLE',
  'POLKU_ERR_ADMIN_NOT_FOUND',
  'POLKU_ERR_ADMIN_INVALID',
]);

const NS_PER_MS = 1_000_000n;

/**
 * polku.v1.Admin on the gateway's gRPC port: the same operations as `polku dlq` / `polku replay`
 * and the /admin HTTP routes, for tools that speak gRPC. They change state, so only loopback
 * callers are answered (PERMISSION_DENIED otherwise); without durable mode every call is
 * FAILED_PRECONDITION.
 */
export class AdminServiceHandler {
  constructor(
    private readonly admin: () => DurableAdmin | null,
    private readonly log: Logger,
    private readonly access: AdminAccess = new AdminAccess(undefined),
  ) {}

  definition(): ServiceDefinition {
    return AdminService as unknown as ServiceDefinition;
  }

  implementation(): UntypedServiceImplementation {
    return {
      listDeadLetters: this.unary(async (a, req: ListDeadLettersRequest): Promise<ListDeadLettersResponse> => ({
        deadLetters: (await a.listDeadLetters(req.limit === 0 ? 1000 : req.limit)).map(toWire),
      })),
      inspectDeadLetter: this.unary(async (a, req: InspectDeadLetterRequest): Promise<DeadLetter> => {
        const letter = req.id <= BigInt(Number.MAX_SAFE_INTEGER) ? await a.inspectDeadLetter(Number(req.id)) : undefined;
        if (!letter) throw polkuError('POLKU_ERR_ADMIN_NOT_FOUND', req.id);
        return toWire(letter);
      }),
      replayDeadLetters: this.unary(async (a): Promise<ReplayResponse> => {
        const r = await a.replayDeadLetters();
        return { matched: BigInt(r.matched), delivered: BigInt(r.delivered), keptForMissingEmitter: BigInt(r.keptForMissingEmitter) };
      }),
      purgeDeadLetters: this.unary(async (a): Promise<PurgeDeadLettersResponse> => ({ purged: BigInt(await a.purgeDeadLetters()) })),
      replay: this.unary(async (a, req: ReplayRequest): Promise<ReplayResponse> => {
        if (req.fromUnixNs > req.toUnixNs) throw polkuError('POLKU_ERR_ADMIN_INVALID', 'from_unix_ns is after to_unix_ns');
        const emitter = req.emitter;
        if (emitter !== '' && !a.hasEmitter(emitter)) throw polkuError('POLKU_ERR_ADMIN_INVALID', `no emitter named "${emitter}"`);
        const r = await a.replay({
          fromMs: Number(req.fromUnixNs / NS_PER_MS),
          toMs: Number(req.toUnixNs / NS_PER_MS),
          ...(emitter !== '' ? { emitter } : {}),
        });
        return { matched: BigInt(r.matched), delivered: BigInt(r.delivered), keptForMissingEmitter: 0n };
      }),
    };
  }

  private unary<Req, Res>(handle: (admin: DurableAdmin, request: Req) => Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const run = async (): Promise<Res> => {
        const authorization = call.metadata.get('authorization')[0];
        const refused = this.access.check(
          peerAddress(call.getPeer()),
          typeof authorization === 'string' ? authorization : undefined,
          'polku.v1.Admin',
        );
        if (refused) throw refused;
        const admin = this.admin();
        if (!admin) throw polkuError('POLKU_ERR_ADMIN_NOT_DURABLE');
        return handle(admin, call.request);
      };
      run().then(
        (res) => callback(null, res),
        (err: unknown) => {
          const known = isPolkuError(err) && ADMIN_REFUSALS.has(err.code);
          if (!known) this.log.error({ err, path: call.getPath() }, 'admin call failed');
          const details = known ? err.message : `internal error: ${(err as Error).message}`;
          callback({ code: status[known ? err.grpcStatus : 'INTERNAL'], details, message: details, name: 'AdminError' });
        },
      );
    };
  }
}

function toWire(d: StoredDeadLetter & { id: number }): DeadLetter {
  return {
    id: BigInt(d.id),
    emitter: d.emitter,
    reason: d.reason,
    attempts: d.attempts,
    deadAtUnixNs: BigInt(Math.round(d.deadAtMs)) * NS_PER_MS,
    targets: [...d.targets],
    event: d.event,
  };
}

/** The address of a grpc-js peer: they look like `127.0.0.1:5000`, `[::1]:5000` or `::ffff:127.0.0.1:5000`. */
export function peerAddress(peer: string): string {
  return peer.startsWith('[') ? peer.slice(1, peer.indexOf(']')) : peer.slice(0, peer.lastIndexOf(':'));
}

/** Whether a grpc-js peer is on this host's loopback. */
export function isLoopbackPeer(peer: string): boolean {
  return isLoopbackAddress(peerAddress(peer));
}
