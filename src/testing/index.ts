/**
 * `polku/testing`: testing a pipeline without sleeping. An emitter that keeps what it receives
 * and waits for delivery, and manual time implementing the `Clock` and `Timers` every component
 * takes (`hub().build({ clock, timers })`, or a component's own options).
 */
export { InMemoryEmitter, type InMemoryEmitterOptions, type WaitOptions } from './in-memory-emitter.js';
export { FakeClock, FakeTimers, FAKE_EPOCH_MS, flushPromises, type FakeTimerHandle } from './fake-time.js';
