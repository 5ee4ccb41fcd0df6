import assert from 'node:assert/strict';
import { test } from 'node:test';
import { settingsFromEnv } from '../../src/config/env.js';
import { envEmitters } from '../../src/emit/env-emitters.js';

test('no POLKU_EMIT_* endpoint: no emitter is added', () => {
  assert.deepEqual(settingsFromEnv({}).emitOut, {});
});

test('POLKU_EMIT_OTLP_* and POLKU_EMIT_AHTI_ENDPOINT build the emitters they name', async () => {
  const s = settingsFromEnv({
    POLKU_EMIT_OTLP_ENDPOINT: 'http://collector:4318',
    POLKU_EMIT_OTLP_PROTOCOL: 'http',
    POLKU_EMIT_OTLP_COMPRESSION: 'gzip',
    POLKU_EMIT_OTLP_HEADERS: 'Authorization=Bearer%20s3cret, x-tenant = a=b',
    POLKU_EMIT_AHTI_ENDPOINT: 'ahti:7070',
  });
  assert.deepEqual(s.emitOut, {
    otlp: {
      protocol: 'http',
      endpoint: 'http://collector:4318',
      compression: 'gzip',
      headers: { authorization: 'Bearer s3cret', 'x-tenant': 'a=b' },
    },
    ahti: { endpoint: 'ahti:7070' },
  });
  const emitters = envEmitters(s.emitOut);
  assert.deepEqual(
    emitters.map((e) => e.name),
    ['otlp', 'ahti'],
  );
  for (const e of emitters) await e.shutdown?.();
});

test('bad values stop start-up naming the variable', () => {
  const error = (env: Record<string, string>) => {
    try {
      settingsFromEnv(env);
    } catch (err) {
      return (err as Error).message;
    }
    return 'no error';
  };
  assert.match(error({ POLKU_EMIT_OTLP_PROTOCOL: 'udp' }), /POLKU_EMIT_OTLP_PROTOCOL="udp": must be one of grpc, http/);
  assert.match(error({ POLKU_EMIT_OTLP_COMPRESSION: 'zstd' }), /POLKU_EMIT_OTLP_COMPRESSION="zstd": must be one of none, gzip/);
  assert.match(
    error({ POLKU_EMIT_OTLP_ENDPOINT: 'http://collector:4318/otlp' }),
    /POLKU_EMIT_OTLP_ENDPOINT "http:\/\/collector:4318\/otlp" is not host:port.* \(POLKU_EMIT_OTLP_PROTOCOL=grpc\)/,
    'a URL with a path is not a gRPC target',
  );
  assert.doesNotMatch(
    error({ POLKU_EMIT_OTLP_ENDPOINT: 'http://collector:4317' }),
    /POLKU_EMIT/,
    'http://host:port is a plaintext gRPC target',
  );
  assert.match(
    error({ POLKU_EMIT_OTLP_ENDPOINT: 'collector:4318', POLKU_EMIT_OTLP_PROTOCOL: 'http' }),
    /POLKU_EMIT_OTLP_ENDPOINT "collector:4318"/,
  );
  assert.match(error({ POLKU_EMIT_OTLP_HEADERS: 'novalue' }), /POLKU_EMIT_OTLP_HEADERS="novalue": "novalue" is not key=value/);
  assert.match(error({ POLKU_EMIT_OTLP_HEADERS: 'a=b' }), /POLKU_EMIT_OTLP_HEADERS is set without POLKU_EMIT_OTLP_ENDPOINT/);
  assert.match(error({ POLKU_EMIT_AHTI_ENDPOINT: 'ahti' }), /POLKU_EMIT_AHTI_ENDPOINT "ahti" is not host:port/);
});
