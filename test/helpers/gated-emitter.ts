import { EmitResults, type EmitResult, type Emitter } from '../../src/emit/emitter.js';
import type { Event } from '../../src/gen/polku/v1/event.js';

/**
 * An emitter that holds every batch until the test opens the gate: a destination that is down or
 * slow, under the test's control rather than a timer's.
 */
export class GatedEmitter implements Emitter {
  readonly batches: Event[][] = [];
  private gateOpen = false;
  private held: Array<() => void> = [];

  constructor(readonly name: string) {}

  get delivered(): number {
    return this.gateOpen ? this.batches.reduce((n, b) => n + b.length, 0) : 0;
  }

  /** Batches handed to emit so far (held or not). */
  get calls(): number {
    return this.batches.length;
  }

  emit(events: readonly Event[]): Promise<EmitResult> {
    this.batches.push([...events]);
    if (this.gateOpen) return Promise.resolve(EmitResults.success());
    return new Promise((resolve) => this.held.push(() => resolve(EmitResults.success())));
  }

  /** Lets every held batch (and every later one) through. */
  open(): void {
    this.gateOpen = true;
    for (const release of this.held.splice(0)) release();
  }
}
