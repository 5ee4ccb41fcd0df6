import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as polku from '../../src/index.js';
import { isPolkuError } from '../../src/errors.js';
import * as testing from '../../src/testing/index.js';

/*
 * Every component exported from `polku` (and `polku/testing`) refuses an option key it does not
 * know, at construction, with POLKU_ERR_OPTION_INVALID naming the component, the key and the
 * nearest known key. The table is keyed by export name, and the test fails for an export that is
 * neither in it nor named as not taking options: a new component cannot be forgotten.
 */

type Make = () => unknown;
const inner = (): polku.Emitter => new testing.InMemoryEmitter({ name: 'inner' });
// Past the types on purpose: a JavaScript module (or a cast) reaches the constructor like this.
const loose = <T>(o: Record<string, unknown>): T => o as T;

/** Export name → [construct it with one misspelt key, the component named, the key, its did-you-mean]. */
const MISSPELT: Record<string, [Make, string, string, string]> = {
  // Ingestors.
  JsonIngestor: [() => new polku.JsonIngestor(loose({ sourcse: ['a'] })), 'JsonIngestor "json"', 'sourcse', 'sources'],
  PassthroughIngestor: [() => new polku.PassthroughIngestor(loose({ nme: 'p' })), 'PassthroughIngestor "passthrough"', 'nme', 'name'],
  ExternalIngestor: [
    () => new polku.ExternalIngestor(loose({ sources: 'csv', address: '127.0.0.1:1', callTimeutMs: 5 })),
    'ExternalIngestor "external:csv"',
    'callTimeutMs',
    'callTimeoutMs',
  ],
  TapioIngestor: [() => new polku.TapioIngestor(loose({ source: ['t'] })), 'TapioIngestor "tapio"', 'source', 'sources'],
  ElavaIngestor: [() => new polku.ElavaIngestor(loose({ source: ['e'] })), 'ElavaIngestor "elava"', 'source', 'sources'],
  PorttiIngestor: [() => new polku.PorttiIngestor(loose({ source: ['p'] })), 'PorttiIngestor "portti"', 'source', 'sources'],
  // Middleware.
  filter: [() => polku.filter(() => true, loose({ reson: 'x' })), 'filter "filter"', 'reson', 'reason'],
  transform: [() => polku.transform((e) => e, loose({ nam: 't' })), 'transform "transform"', 'nam', 'name'],
  router: [() => polku.router(loose({ rules: [], mod: 'all' })), 'router "router"', 'mod', 'mode'],
  rateLimiter: [
    () => polku.rateLimiter(loose({ global: { rate: 1 }, onLimt: 'delay' })),
    'rateLimiter "rate-limiter"',
    'onLimt',
    'onLimit',
  ],
  sampler: [() => polku.sampler(loose({ rat: 0.5 })), 'sampler "sampler"', 'rat', 'rate'],
  deduplicator: [() => polku.deduplicator(loose({ ttl: 5 })), 'deduplicator "deduplicator"', 'ttl', 'ttlMs'],
  enricher: [() => polku.enricher(async () => {}, loose({ concurency: 2 })), 'enricher "enricher"', 'concurency', 'concurrency'],
  validator: [() => polku.validator(loose({ tagkey: 'x' })), 'validator "validator"', 'tagkey', 'tagKey'],
  kubernetesEnricher: [
    () => polku.kubernetesEnricher(loose({ nodeName: 'n', maxPod: 5 })),
    'kubernetesEnricher "kubernetes"',
    'maxPod',
    'maxPods',
  ],
  // Emitters.
  StdoutEmitter: [() => new polku.StdoutEmitter(loose({ stram: process.stdout })), 'StdoutEmitter "stdout"', 'stram', 'stream'],
  WebhookEmitter: [
    () => new polku.WebhookEmitter(loose({ url: 'http://127.0.0.1:1/', header: {} })),
    'WebhookEmitter "webhook"',
    'header',
    'headers',
  ],
  FileEmitter: [() => new polku.FileEmitter(loose({ path: '/tmp/x.ndjson', maxFile: 2 })), 'FileEmitter "file"', 'maxFile', 'maxFiles'],
  GrpcEmitter: [
    () => new polku.GrpcEmitter(loose({ endpoints: ['127.0.0.1:1'], timoutMs: 5 })),
    'GrpcEmitter "grpc"',
    'timoutMs',
    'timeoutMs',
  ],
  ExternalEmitter: [
    () => new polku.ExternalEmitter(loose({ name: 'plug', address: '127.0.0.1:1', adress: 'x' })),
    'ExternalEmitter "plug"',
    'adress',
    'address',
  ],
  OtlpEmitter: [
    () => new polku.OtlpEmitter(loose({ endpoint: '127.0.0.1:1', compresion: 'gzip' })),
    'OtlpEmitter "otlp"',
    'compresion',
    'compression',
  ],
  AhtiEmitter: [
    () => new polku.AhtiEmitter(loose({ endpoint: '127.0.0.1:1', ackTimeout: 5 })),
    'AhtiEmitter "ahti"',
    'ackTimeout',
    'ackTimeoutMs',
  ],
  PostgresEmitter: [
    () => new polku.PostgresEmitter(loose({ connectionString: 'postgres://127.0.0.1:1/x', tabel: 'x' })),
    'PostgresEmitter "postgres"',
    'tabel',
    'table',
  ],
  S3Emitter: [() => new polku.S3Emitter(loose({ bucket: 'b', regoin: 'eu' })), 'S3Emitter "s3"', 'regoin', 'region'],
  RedisStreamEmitter: [
    () => new polku.RedisStreamEmitter(loose({ url: 'redis://127.0.0.1:1', maxlen: 5 })),
    'RedisStreamEmitter "redis"',
    'maxlen',
    'maxLen',
  ],
  NatsEmitter: [
    () => new polku.NatsEmitter(loose({ servers: 'nats://127.0.0.1:1', subjet: 'a' })),
    'NatsEmitter "nats"',
    'subjet',
    'subject',
  ],
  // Emitter wrappers.
  withRetry: [() => polku.withRetry(inner(), loose({ retrys: 2 })), 'withRetry("inner")', 'retrys', 'retries'],
  withCircuitBreaker: [
    () => polku.withCircuitBreaker(inner(), loose({ failureTreshold: 2 })),
    'withCircuitBreaker("inner")',
    'failureTreshold',
    'failureThreshold',
  ],
  withTimeout: [() => polku.withTimeout(inner(), loose({ timeoutMs: 5, timeotMs: 5 })), 'withTimeout("inner")', 'timeotMs', 'timeoutMs'],
  // The pipeline: hub()'s registration of an emitter (its settings have tests of their own).
  hub: [() => polku.hub().emitter(inner(), loose({ defualt: false })), 'hub().emitter("inner")', 'defualt', 'default'],
};

/** Exports that are not components taking an options object. */
const NO_OPTIONS = new Set(['EmitResults', 'eventToJson', 'hasClientId', 'EmitterWrapper', 'AckCodes', 'Event', 'Severity', 'Outcome']);

/** Nested options objects that are ours: a misspelt key inside is refused too, with its path. */
const NESTED: Array<[string, Make, string, string]> = [
  [
    'WebhookEmitter tls',
    () => new polku.WebhookEmitter(loose({ url: 'https://127.0.0.1:1/', tls: { caFil: 'x' } })),
    'tls.caFil',
    'tls.caFile',
  ],
  [
    'GrpcEmitter reconnect',
    () => new polku.GrpcEmitter(loose({ endpoints: ['127.0.0.1:1'], reconnect: { maxMS: 5 } })),
    'reconnect.maxMS',
    'reconnect.maxMs',
  ],
  [
    'AhtiEmitter tls',
    () => new polku.AhtiEmitter(loose({ endpoint: '127.0.0.1:1', tls: { serverNam: 'a' } })),
    'tls.serverNam',
    'tls.serverName',
  ],
  [
    'OtlpEmitter tls',
    () => new polku.OtlpEmitter(loose({ endpoint: '127.0.0.1:1', tls: { certfile: 'a' } })),
    'tls.certfile',
    'tls.certFile',
  ],
  [
    'S3Emitter credentials',
    () => new polku.S3Emitter(loose({ bucket: 'b', credentials: { accessKeyId: 'a', secretAccesKey: 'b' } })),
    'credentials.secretAccesKey',
    'credentials.secretAccessKey',
  ],
  [
    'ExternalEmitter breaker',
    () => new polku.ExternalEmitter(loose({ name: 'p', address: '127.0.0.1:1', breaker: { resetTimeout: 5 } })),
    'breaker.resetTimeout',
    'breaker.resetTimeoutMs',
  ],
  [
    'ExternalIngestor breaker',
    () => new polku.ExternalIngestor(loose({ sources: 'c', address: '127.0.0.1:1', breaker: { failureThresold: 5 } })),
    'breaker.failureThresold',
    'breaker.failureThreshold',
  ],
  ['router rule', () => polku.router(loose({ rules: [{ to: ['a'] }, { to: ['b'], sorce: 'x' }] })), 'rules[1].sorce', 'rules[1].source'],
  ['rateLimiter perKey', () => polku.rateLimiter(loose({ perKey: { rate: 1, maxkeys: 5 } })), 'perKey.maxkeys', 'perKey.maxKeys'],
  ['rateLimiter global', () => polku.rateLimiter(loose({ global: { rate: 1, brust: 5 } })), 'global.brust', 'global.burst'],
  [
    'kubernetesEnricher keys',
    () => polku.kubernetesEnricher(loose({ nodeName: 'n', keys: { podname: 'p' } })),
    'keys.podname',
    'keys.podName',
  ],
  [
    'kubernetesEnricher backoff',
    () => polku.kubernetesEnricher(loose({ nodeName: 'n', backoff: { initialMs: 1, maxMS: 2 } })),
    'backoff.maxMS',
    'backoff.maxMs',
  ],
];

function refusal(make: Make): string {
  try {
    make();
  } catch (err) {
    assert.ok(isPolkuError(err), `not a coded error: ${String(err)}`);
    assert.equal(err.code, 'POLKU_ERR_OPTION_INVALID', err.message);
    return err.message;
  }
  assert.fail('constructed without a word');
}

describe('unknown option keys', () => {
  test('every export of polku is either in the table or takes no options object', () => {
    const forgotten = Object.keys(polku).filter((name) => !(name in MISSPELT) && !NO_OPTIONS.has(name));
    assert.deepEqual(forgotten, [], 'add these exports to MISSPELT (or to NO_OPTIONS)');
  });

  for (const [name, [make, component, key, near]] of Object.entries(MISSPELT)) {
    test(`${name}: "${key}" is refused, naming ${component} and "${near}"`, () => {
      const message = refusal(make);
      assert.ok(message.startsWith(`${component}: unknown option "${key}": did you mean "${near}"? (known: `), message);
    });
  }

  test('polku/testing InMemoryEmitter too', () => {
    const message = refusal(() => new testing.InMemoryEmitter(loose({ maxRetaind: 3 })));
    assert.ok(message.startsWith('InMemoryEmitter "memory": unknown option "maxRetaind": did you mean "maxRetained"?'), message);
  });

  for (const [what, make, key, near] of NESTED) {
    test(`${what}: "${key}" is refused with its path`, () => {
      assert.match(refusal(make), new RegExp(`unknown option "${escape(key)}": did you mean "${escape(near)}"\\?`));
    });
  }

  test('every known key is accepted (the lists are complete): a fully specified PostgresEmitter builds', async () => {
    const pg = new polku.PostgresEmitter({
      name: 'pg',
      connectionString: 'postgres://127.0.0.1:1/x',
      table: 't',
      columns: { id: 'id' },
      poolSize: 1,
      rowsPerStatement: 10,
      timeoutMs: 10,
      connectTimeoutMs: 10,
    });
    await pg.shutdown?.();
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
