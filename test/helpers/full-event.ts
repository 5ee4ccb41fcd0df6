import { Outcome, Severity, type Event } from '../../src/gen/polku/v1/event.js';

/** An event with every field of polku.event.v1.Event set to something other than its default. */
export function fullEvent(overrides: Partial<Event> = {}): Event {
  return {
    id: 'evt-1',
    timestampUnixNs: 1_764_560_000_123_456_789n,
    source: 'kubelet',
    eventType: 'pod.started',
    metadata: { namespace: 'default', 'ünïcode-κλειδί': 'värde ✓', empty: '' },
    payload: new Uint8Array([0, 1, 2, 250, 255]),
    routeTo: ['webhook', 'file'],
    severity: Severity.SEVERITY_WARNING,
    outcome: Outcome.OUTCOME_FAILURE,
    ...overrides,
  };
}
