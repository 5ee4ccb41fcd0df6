import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EmitResults, withCircuitBreaker, withRetry, withTimeout, type Emitter } from '../../src/index.js';

// polku validate --probe dials an emitter through its wrappers: a wrapped PostgresEmitter is
// probed, not listed as "skip: no probe".
test('emitter wrappers forward probe when the wrapped emitter has one, and have none otherwise', async () => {
  const signals: AbortSignal[] = [];
  const probed: Emitter = {
    name: 'probed',
    emit: () => Promise.resolve(EmitResults.success()),
    probe: (signal) => {
      signals.push(signal);
      return Promise.resolve({ ok: true, detail: 'reached' });
    },
  };
  const wrapped = withTimeout(withCircuitBreaker(withRetry(probed)), { timeoutMs: 100 });
  const signal = new AbortController().signal;
  assert.deepEqual(await wrapped.probe?.(signal), { ok: true, detail: 'reached' });
  assert.deepEqual(signals, [signal]);
  const plain: Emitter = { name: 'plain', emit: () => Promise.resolve(EmitResults.success()) };
  assert.equal(withRetry(plain).probe, undefined);
});
