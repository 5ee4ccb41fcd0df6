// The sinks' client libraries, loaded when an emitter that needs one is constructed, not when
// a module imports 'polku': together they cost about 55 MB of memory to load (ioredis 26 MB,
// @aws-sdk/client-s3 20 MB, @nats-io/transport-node 9 MB; docs/benchmarks.md, "Footprint"), which
// a gateway or a pipeline module that writes to none of them should not pay. All three are
// CommonJS packages loaded by their package name (no deep path), so `require` loads them
// synchronously where the constructor needs them; their types are imported as types only.
// (pg is loaded by PostgresEmitter itself, asynchronously on its first statement: see loadPg.)
import { createRequire } from 'node:module';
import type * as IoRedis from 'ioredis';
import type * as NatsTransport from '@nats-io/transport-node';
import type * as S3 from '@aws-sdk/client-s3';

const load = createRequire(import.meta.url);

let ioredis: typeof IoRedis | undefined;
let nats: typeof NatsTransport | undefined;
let s3: typeof S3 | undefined;

/** `ioredis`, loaded by the first RedisStreamEmitter. */
export function loadIoredis(): typeof IoRedis {
  return (ioredis ??= load('ioredis') as typeof IoRedis);
}

/** `@nats-io/transport-node`, loaded by the first NatsEmitter. */
export function loadNats(): typeof NatsTransport {
  return (nats ??= load('@nats-io/transport-node') as typeof NatsTransport);
}

/** `@aws-sdk/client-s3`, loaded by the first S3Emitter. */
export function loadS3(): typeof S3 {
  return (s3 ??= load('@aws-sdk/client-s3') as typeof S3);
}
