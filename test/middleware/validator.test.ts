import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { InMemoryEmitter } from '../../src/emit/in-memory.js';
import { PolkuError } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import { hub } from '../../src/hub/builder.js';
import type { MiddlewareContext } from '../../src/middleware/middleware.js';
import { validator, type ValidatorOptions } from '../../src/middleware/validator.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';

/** A MiddlewareContext that records what the middleware drops. */
function recorder() {
  const drops: Array<{ id: string; code: string; message: string }> = [];
  const ctx: MiddlewareContext = {
    source: 's',
    cluster: '',
    receivedAtNs: 0n,
    drop: (e, code, message) => drops.push({ id: e.id, code, message }),
  };
  return { ctx, drops };
}

const ev = (fields: Partial<Event>): Event => ({ ...Event.create(), ...fields });
const bytes = (text: string) => new TextEncoder().encode(text);

/** Runs one event through a dropping validator; returns the drop message, or undefined when it passed. */
function reasonFor(options: ValidatorOptions, event: Event): string | undefined {
  const { ctx, drops } = recorder();
  const out = validator(options).process([event], ctx);
  assert.equal(out.length + drops.length, 1);
  if (drops.length === 0) return undefined;
  assert.equal(drops[0]!.code, 'VALIDATION_FAILED');
  return drops[0]!.message;
}

test('jsonPayload: valid JSON passes; bad JSON, bad UTF-8 and empty payloads fail naming the rule', () => {
  const json = { jsonPayload: true };
  assert.equal(reasonFor(json, ev({ payload: bytes('{"a":[1,2]}') })), undefined);
  assert.equal(reasonFor(json, ev({ payload: bytes('42') })), undefined, 'any JSON value, not only objects');
  assert.match(reasonFor(json, ev({ payload: bytes('{"a":') }))!, /^jsonPayload: payload is not valid JSON \(/);
  assert.equal(reasonFor(json, ev({ payload: new Uint8Array([0x22, 0xff, 0x22]) })), 'jsonPayload: payload is not valid UTF-8');
  assert.equal(reasonFor(json, ev({})), 'jsonPayload: payload is empty, not JSON');
});

test('nonEmptyPayload and maxPayloadBytes', () => {
  assert.equal(reasonFor({ nonEmptyPayload: true }, ev({})), 'nonEmptyPayload: payload is empty');
  assert.equal(reasonFor({ nonEmptyPayload: true }, ev({ payload: bytes('x') })), undefined);
  assert.equal(reasonFor({ maxPayloadBytes: 3 }, ev({ payload: bytes('abc') })), undefined, 'the limit itself is allowed');
  assert.equal(reasonFor({ maxPayloadBytes: 3 }, ev({ payload: bytes('abcd') })), 'maxPayloadBytes: payload is 4 bytes, limit 3');
});

test('requiredMetadata names the first missing key; an empty value counts as present', () => {
  const options = { requiredMetadata: ['tenant', 'region'] };
  assert.equal(reasonFor(options, ev({ metadata: { tenant: '', region: 'eu' } })), undefined);
  assert.equal(reasonFor(options, ev({ metadata: { region: 'eu' } })), 'requiredMetadata: missing "tenant"');
  assert.equal(
    reasonFor({ requiredMetadata: ['constructor'] }, ev({})),
    'requiredMetadata: missing "constructor"',
    'inherited keys do not count',
  );
});

test('requiredEventType', () => {
  assert.equal(reasonFor({ requiredEventType: true }, ev({})), 'requiredEventType: event type is empty');
  assert.equal(reasonFor({ requiredEventType: true }, ev({ eventType: 'user.signup' })), undefined);
});

test('custom rules run after the built-in ones; a rule that throws refuses its event MIDDLEWARE_ERROR', () => {
  const custom = [(e: Event) => (e.source === 'legacy' ? 'legacy sources are retired' : undefined), () => ''];
  assert.equal(reasonFor({ custom }, ev({ source: 'legacy' })), 'custom: legacy sources are retired');
  assert.equal(reasonFor({ custom }, ev({ source: 'new' })), undefined, "'' means valid");
  assert.equal(reasonFor({ custom, requiredEventType: true }, ev({ source: 'legacy' })), 'requiredEventType: event type is empty');
  const { ctx, drops } = recorder();
  const throwing = validator({
    onInvalid: 'tag',
    custom: () => {
      throw new Error('rule bug');
    },
  });
  assert.deepEqual(throwing.process([ev({ id: 'x' })], ctx), []);
  assert.deepEqual(drops, [{ id: 'x', code: 'MIDDLEWARE_ERROR', message: 'validator "validator" rule custom threw: rule bug' }]);
});

test('onInvalid drop refuses invalid events and keeps valid ones in order', () => {
  const { ctx, drops } = recorder();
  const v = validator({ requiredEventType: true });
  const out = v.process([ev({ id: 'a', eventType: 't' }), ev({ id: 'b' }), ev({ id: 'c', eventType: 't' })], ctx);
  assert.deepEqual(
    out.map((e) => e.id),
    ['a', 'c'],
  );
  assert.deepEqual(drops, [{ id: 'b', code: 'VALIDATION_FAILED', message: 'requiredEventType: event type is empty' }]);
});

test('onInvalid tag keeps invalid events with the reason in metadata, and strips a forged tag from valid ones', () => {
  const { ctx, drops } = recorder();
  const v = validator({ requiredEventType: true, onInvalid: 'tag' });
  const forged = ev({ id: 'forged', eventType: 't', metadata: { 'polku.validation_error': 'fake' } });
  const out = v.process([ev({ id: 'bad' }), forged], ctx);
  assert.equal(drops.length, 0);
  assert.deepEqual(
    out.map((e) => [e.id, e.metadata['polku.validation_error']]),
    [
      ['bad', 'requiredEventType: event type is empty'],
      ['forged', undefined],
    ],
  );
  const custom = validator({ requiredEventType: true, onInvalid: 'tag', tagKey: 'invalid' }).process([ev({})], ctx);
  assert.equal(custom[0]!.metadata['invalid'], 'requiredEventType: event type is empty');
});

test('reasons quoting the payload are kept short', () => {
  const reason = reasonFor({ jsonPayload: true }, ev({ payload: bytes(`{"x": ${'y'.repeat(5_000)}}`) }))!;
  assert.ok(reason.length <= 201, `reason is ${reason.length} characters`);
});

test('polku_validation_failures_total counts broken rules in both modes', async () => {
  const registry = new Registry();
  const clock = new FakeClock();
  const v = validator({ name: 'v1', requiredEventType: true, jsonPayload: true, onInvalid: 'tag' });
  v.init({ registry, logger: silentLogger(), clock, timers: new FakeTimers(clock) });
  v.process([ev({}), ev({ eventType: 't' }), ev({ eventType: 't', payload: bytes('{}') })], recorder().ctx);
  const metric = await registry.getSingleMetric('polku_validation_failures_total')!.get();
  const byRule = Object.fromEntries(metric.values.map((m) => [m.labels['rule'], m.value]));
  assert.deepEqual(byRule, { requiredEventType: 1, jsonPayload: 1 });
});

test('bad options fail when the validator is built', () => {
  const invalid = (pattern: RegExp) => (err: unknown) => err instanceof PolkuError && pattern.test(err.message);
  assert.throws(() => validator({ maxPayloadBytes: -1 }), invalid(/maxPayloadBytes must be an integer/));
  assert.throws(() => validator({ onInvalid: 'fix' as 'tag' }), invalid(/onInvalid must be "drop" or "tag"/));
  assert.throws(() => validator({ tagKey: '' }), invalid(/tagKey/));
});

test('through a hub: invalid events are refused VALIDATION_FAILED with the reason', async () => {
  const clock = new FakeClock();
  const gateway = hub()
    .middleware(validator({ jsonPayload: true }))
    .emitter(new InMemoryEmitter())
    .build({ clock, timers: new FakeTimers(clock) });
  const events = [ev({ id: 'ok', payload: bytes('{}') }), ev({ id: 'bad', payload: bytes('nope') })];
  const ack = await gateway.processBatch({ source: 's', cluster: '', payload: { $case: 'events', value: { events } } });
  assert.deepEqual(ack.eventIds, ['ok']);
  assert.equal(ack.errors.length, 1);
  assert.equal(ack.errors[0]!.eventId, 'bad');
  assert.equal(ack.errors[0]!.code, 'VALIDATION_FAILED');
  assert.match(ack.errors[0]!.message, /^jsonPayload: payload is not valid JSON/);
});

test('only a dropping validator leaves the events it passes unchanged; a tagging one writes to their metadata', () => {
  assert.equal(validator({ requiredEventType: true }).keepsEventsUnchanged, true);
  assert.equal(validator({ requiredEventType: true, onInvalid: 'tag' }).keepsEventsUnchanged, false);
});
