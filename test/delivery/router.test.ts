// The delivery router: route_to names, and upstream's external:<name> alias.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeliveryQueue } from '../../src/delivery/delivery-queue.js';
import { Router } from '../../src/delivery/router.js';
import type { Event } from '../../src/gen/polku/v1/event.js';

const queue = (name: string, isDefault = false) => ({ name, isDefault }) as DeliveryQueue;
const event = (routeTo: string[]) => ({ routeTo }) as unknown as Event;

const stdout = queue('stdout', true);
const slack = queue('slack');
const literal = queue('external:audit');
const audit = queue('audit');
const router = new Router([stdout, slack, literal, audit]);

test('external:<name> reaches the emitter <name>, as the name itself does, with the same shared array', () => {
  assert.deepEqual(router.targetsOf(event(['external:slack'])), [slack]);
  assert.equal(router.targetsOf(event(['external:slack'])), router.targetsOf(event(['external:slack'])), 'no allocation per event');
  assert.deepEqual(router.targetsOf(event(['slack'])), [slack]);
  assert.deepEqual(router.targetsOf(event(['external:stdout'])), [stdout]);
});

test('named twice, once as external:<name>: delivered once', () => {
  assert.deepEqual(router.targetsOf(event(['slack', 'external:slack', 'stdout'])), [slack, stdout]);
});

test('an emitter whose own name starts with external: keeps that exact name', () => {
  assert.deepEqual(router.targetsOf(event(['external:audit'])), [literal]);
  assert.deepEqual(router.targetsOf(event(['audit'])), [audit]);
});

test('unknown names, with or without the prefix, route nowhere; an empty route_to goes to the defaults', () => {
  assert.deepEqual(router.targetsOf(event(['external:nope'])), []);
  assert.deepEqual(router.targetsOf(event(['external:'])), []);
  assert.deepEqual(router.targetsOf(event(['external:external:slack'])), []);
  assert.deepEqual(router.targetsOf(event([])), [stdout]);
});
