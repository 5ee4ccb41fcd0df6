import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ACK_DROP_REASONS,
  AckCodes,
  DropReasons,
  ErrorCodes,
  PolkuError,
  StorageError,
  dropReasonOf,
  isPolkuError,
  polkuError,
  refusalOf,
  type AckCode,
} from '../../src/errors.js';
import { RegistryError } from '../../src/registry/plugin-spec.js';

const refusedWith = (code: string) => ({ eventIds: [], errors: [{ code }] });

describe('the Ack-code status table', () => {
  test('a unary call fails exactly as SendEvent always did: full, draining, unreadable, too large', () => {
    const failing = Object.fromEntries(
      (Object.keys(AckCodes) as AckCode[]).flatMap((code) => {
        const r = refusalOf(refusedWith(code));
        return r ? [[code, r.grpc]] : [];
      }),
    );
    assert.deepEqual(failing, {
      BUFFER_FULL: 'RESOURCE_EXHAUSTED',
      SHUTTING_DOWN: 'UNAVAILABLE',
      INVALID_BATCH: 'INVALID_ARGUMENT',
      BATCH_TOO_LARGE: 'INVALID_ARGUMENT',
      // Tenants: a caller without a valid key, or sending a source its tenant may not send.
      UNAUTHENTICATED: 'UNAUTHENTICATED',
      PERMISSION_DENIED: 'PERMISSION_DENIED',
    });
  });

  test('a call that accepted anything, or refused nothing, or refused with an unknown code, succeeds', () => {
    assert.equal(refusalOf({ eventIds: ['a'], errors: [{ code: 'BUFFER_FULL' }] }), undefined);
    assert.equal(refusalOf({ eventIds: [], errors: [] }), undefined);
    assert.equal(refusalOf(refusedWith('NOT_A_CODE')), undefined);
  });

  test('the HTTP statuses a receiver answers with', () => {
    assert.deepEqual(
      Object.fromEntries(
        ['BUFFER_FULL', 'RATE_LIMITED', 'SHUTTING_DOWN', 'INVALID_BATCH', 'BATCH_TOO_LARGE', 'PAYLOAD_TOO_LARGE', 'UNKNOWN_SOURCE'].map(
          (c) => [c, AckCodes[c as AckCode].http],
        ),
      ),
      {
        BUFFER_FULL: 429,
        RATE_LIMITED: 429,
        SHUTTING_DOWN: 503,
        INVALID_BATCH: 400,
        BATCH_TOO_LARGE: 413,
        PAYLOAD_TOO_LARGE: 413,
        UNKNOWN_SOURCE: 400,
      },
    );
  });
});

describe('drop reasons', () => {
  test('each Ack code counts under its lower-case name', () => {
    for (const code of Object.keys(AckCodes) as AckCode[]) assert.equal(dropReasonOf(code), code.toLowerCase());
    assert.deepEqual(Object.keys(ACK_DROP_REASONS).sort(), Object.keys(AckCodes).sort());
  });

  test('the label set is the Ack codes plus the delivery-side reasons, each once', () => {
    assert.equal(new Set(DropReasons).size, DropReasons.length);
    assert.deepEqual(
      [...DropReasons].sort(),
      [
        ...Object.values(ACK_DROP_REASONS),
        'buffer_overflow_evicted',
        'emit_failed',
        'emit_retries_exhausted',
        'emitter_removed',
        'undelivered_at_shutdown',
      ].sort(),
    );
  });
});

describe('POLKU_ERR_* codes', () => {
  test('polkuError fills the template, takes a cause, and the error knows its statuses', () => {
    const cause = new Error('disk');
    const err = polkuError('POLKU_ERR_CONFIG_INVALID', 'pipeline module x failed to load', cause);
    assert.ok(err instanceof PolkuError && err instanceof Error);
    assert.equal(err.message, 'pipeline module x failed to load');
    assert.equal(err.cause, cause);
    assert.equal(polkuError('POLKU_ERR_ADMIN_NOT_FOUND', 7n).message, 'no dead letter 7 (never was, or purged)');
    assert.equal(polkuError('POLKU_ERR_REGISTRY_RATE_LIMITED', 250).message, 'too many registrations; try again in 250 ms');
    const full = polkuError('POLKU_ERR_REGISTRY_FULL', 'table full');
    assert.deepEqual([full.retryable, full.grpcStatus, full.httpStatus], [true, 'RESOURCE_EXHAUSTED', 503]);
    assert.equal(isPolkuError(err), true);
    assert.equal(isPolkuError(new Error('x')), false);
  });

  test('every code has a template, a gRPC status and an HTTP status', () => {
    for (const [code, info] of Object.entries(ErrorCodes)) {
      assert.match(code, /^POLKU_ERR_[A-Z_]+$/);
      assert.ok(info.message.length > 0, code);
      assert.ok(info.http >= 200 && info.http < 600, code);
    }
  });

  test('registry refusals keep the gRPC statuses plugins see', () => {
    const seen = (code: ConstructorParameters<typeof RegistryError>[0]) => new RegistryError(code, 'x').grpcStatus;
    assert.deepEqual(
      [
        seen('POLKU_ERR_REGISTRY_UNAUTHENTICATED'),
        seen('POLKU_ERR_REGISTRY_RATE_LIMITED'),
        seen('POLKU_ERR_REGISTRY_INVALID'),
        seen('POLKU_ERR_REGISTRY_ADDRESS_DENIED'),
        seen('POLKU_ERR_REGISTRY_NAME_TAKEN'),
        seen('POLKU_ERR_REGISTRY_FULL'),
        seen('POLKU_ERR_PLUGIN_UNREACHABLE'),
        seen('POLKU_ERR_PLUGIN_MISMATCH'),
        seen('POLKU_ERR_REGISTRY_NOT_FOUND'),
      ],
      [
        'UNAUTHENTICATED',
        'RESOURCE_EXHAUSTED',
        'INVALID_ARGUMENT',
        'PERMISSION_DENIED',
        'ALREADY_EXISTS',
        'RESOURCE_EXHAUSTED',
        'UNAVAILABLE',
        'FAILED_PRECONDITION',
        'NOT_FOUND',
      ],
    );
  });

  test('a storage error keeps its short code and finds its row', () => {
    const err = new StorageError('STORAGE_FULL', 'disk full');
    assert.deepEqual(
      [err.code, err.errorCode, err.retryable, err.grpcStatus],
      ['STORAGE_FULL', 'POLKU_ERR_STORAGE_FULL', true, 'RESOURCE_EXHAUSTED'],
    );
  });
});
