import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { EmitResults, type Emitter } from '../../src/emit/emitter.js';
import { hub } from '../../src/hub/builder.js';
import { isLoopbackPeer } from '../../src/server/admin-service.js';
import { AckStream, PROTO_DIR, startGateway, type RunningGateway } from '../helpers/gateway-harness.js';

/** An Admin client made from admin.proto alone, as grpcurl or a script in another language would. */
function adminClient(port: number): grpc.Client & Record<string, any> {
  const definition = loadSync('polku/v1/admin.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  return new pkg.polku.v1.Admin(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function call<T>(client: grpc.Client & Record<string, any>, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](request, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

async function refusal(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('the call succeeded; a refusal was expected');
}

/** Refuses for good every event whose id starts with "bad". */
const picky: Emitter = {
  name: 'picky',
  emit(events) {
    const refused = events.flatMap((e, index) => (e.id.startsWith('bad') ? [{ index, retryable: false, error: `refused ${e.id}` }] : []));
    return Promise.resolve(refused.length === 0 ? EmitResults.success() : EmitResults.partial(refused));
  },
};

const running: RunningGateway[] = [];
after(async () => {
  for (const g of running) await g.stop();
});

describe('polku.v1.Admin', () => {
  test('lists, inspects, replays and purges dead letters, and replays a time range', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-admin-rpc-'));
    const gw = await startGateway(hub().emitter(picky).durable({ dir, fsync: false }));
    running.push(gw);
    const admin = adminClient(gw.grpcPort);
    const sentAtNs = BigInt(Date.now()) * 1_000_000n;
    const ack = await new AckStream(gw.client).send({
      source: 'rpc',
      events: {
        events: [
          { id: 'bad-a', event_type: 't' },
          { id: 'ok-a', event_type: 't' },
          { id: 'bad-b', event_type: 't' },
        ],
      },
    });
    assert.deepEqual(ack.event_ids, ['bad-a', 'ok-a', 'bad-b']);

    let listed: {
      dead_letters: Array<{
        id: string;
        emitter: string;
        reason: string;
        attempts: number;
        targets: string[];
        event: { id: string };
        dead_at_unix_ns: string;
      }>;
    };
    const deadline = Date.now() + 10_000;
    do {
      listed = await call(admin, 'ListDeadLetters', {});
      if (listed.dead_letters.length === 2) break;
      await new Promise((r) => setTimeout(r, 20));
    } while (Date.now() < deadline);
    assert.deepEqual(
      listed.dead_letters.map((d) => [d.event.id, d.emitter, d.reason, d.attempts]),
      [
        ['bad-a', 'picky', 'refused bad-a', 1],
        ['bad-b', 'picky', 'refused bad-b', 1],
      ],
    );
    assert.ok(BigInt(listed.dead_letters[0]!.dead_at_unix_ns) >= sentAtNs);
    assert.equal((await call<{ dead_letters: unknown[] }>(admin, 'ListDeadLetters', { limit: 1 })).dead_letters.length, 1);

    const one = await call<{ id: string; targets: string[]; event: { id: string } }>(admin, 'InspectDeadLetter', {
      id: listed.dead_letters[1]!.id,
    });
    assert.equal(one.event.id, 'bad-b');
    assert.deepEqual(one.targets, ['picky']);
    const missing = await refusal(call(admin, 'InspectDeadLetter', { id: '424242' }));
    assert.equal(missing.code, grpc.status.NOT_FOUND);
    assert.match(missing.details, /no dead letter 424242/);

    const again = await call<{ matched: string; delivered: string; kept_for_missing_emitter: string }>(admin, 'ReplayDeadLetters', {});
    assert.deepEqual(again, { matched: '2', delivered: '0', kept_for_missing_emitter: '0' }, 'still refused: back in the dead letters');

    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const range = await call<{ matched: string; delivered: string }>(admin, 'Replay', {
      from_unix_ns: String(sentAtNs - 1_000_000_000n),
      to_unix_ns: String(nowNs),
      emitter: 'picky',
    });
    assert.equal(range.matched, '3', 'the three events received in the range');
    assert.equal(range.delivered, '1', 'ok-a delivered again; the two bad ones refused again');
    const backwards = await refusal(call(admin, 'Replay', { from_unix_ns: String(nowNs), to_unix_ns: String(sentAtNs) }));
    assert.equal(backwards.code, grpc.status.INVALID_ARGUMENT);
    const nobody = await refusal(call(admin, 'Replay', { from_unix_ns: '0', to_unix_ns: String(nowNs), emitter: 'nobody' }));
    assert.equal(nobody.code, grpc.status.INVALID_ARGUMENT);
    assert.match(nobody.details, /no emitter named "nobody"/);

    const purged = await call<{ purged: string }>(admin, 'PurgeDeadLetters', {});
    assert.equal(purged.purged, '4', 'two from the dead-letter replay, two from the range replay');
    assert.deepEqual((await call<{ dead_letters: unknown[] }>(admin, 'ListDeadLetters', {})).dead_letters, []);
    admin.close();
  });

  test('without durable mode every call is FAILED_PRECONDITION', async () => {
    const gw = await startGateway(hub().emitter(picky));
    running.push(gw);
    const admin = adminClient(gw.grpcPort);
    const err = await refusal(call(admin, 'ListDeadLetters', {}));
    assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
    assert.match(err.details, /durable mode is off/);
    admin.close();
  });

  test('only loopback peers are answered', () => {
    for (const peer of ['127.0.0.1:5000', '127.8.9.1:1', '[::1]:5000', '::ffff:127.0.0.1:5000'])
      assert.equal(isLoopbackPeer(peer), true, peer);
    for (const peer of ['10.0.0.7:5000', '[fe80::1]:5000', '::ffff:10.0.0.1:5000', '192.168.1.127:127', 'unix:/tmp/x'])
      assert.equal(isLoopbackPeer(peer), false, peer);
  });
});
