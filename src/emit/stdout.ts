import type { Writable } from 'node:stream';
import type { Event } from '../gen/polku/v1/event.js';
import { EmitResults, type EmitResult, type Emitter, type ProbeResult } from './emitter.js';
import { probeFail, probeOk } from './probe.js';
import { eventToJson } from './event-json.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface StdoutEmitterOptions {
  name?: string;
  /** Where to write; process.stdout unless given (tests pass their own stream). */
  stream?: Writable;
}

/** Every key of {@link StdoutEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const STDOUT_EMITTER_OPTION_KEYS = optionKeys<StdoutEmitterOptions>({ name: true, stream: true });

/**
 * Writes each event as one JSON line (see {@link eventToJson}). One write per batch; a batch
 * completes only once the stream took it, so a slow terminal or pipe slows this emitter's queue
 * instead of growing memory.
 */
export class StdoutEmitter implements Emitter {
  readonly name: string;
  private readonly stream: Writable;

  constructor(options: StdoutEmitterOptions = {}) {
    this.name = options.name ?? 'stdout';
    checkOptionKeys(`StdoutEmitter "${this.name}"`, options, STDOUT_EMITTER_OPTION_KEYS);
    this.stream = options.stream ?? process.stdout;
  }

  /** Nothing to dial: the stream is open unless it was ended. */
  probe(): Promise<ProbeResult> {
    const where = this.stream === process.stdout ? 'standard output' : 'the given stream';
    return Promise.resolve(this.stream.writable ? probeOk(where) : probeFail(`${where} is closed`));
  }

  emit(events: readonly Event[]): Promise<EmitResult> {
    let text = '';
    for (const event of events) text += JSON.stringify(eventToJson(event)) + '\n';
    // The write callback fires once the chunk has been handed on, so waiting for it applies the
    // stream's backpressure to this emitter's queue alone.
    return new Promise((resolve) => {
      this.stream.write(text, (err) => {
        resolve(err ? EmitResults.retryable(`write failed: ${err.message}`) : EmitResults.success());
      });
    });
  }
}
