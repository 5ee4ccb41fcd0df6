import type { ComponentContext } from '../../component-context.js';
import type { Event } from '../../gen/polku/v1/event.js';
import type { EmitResult, Emitter, EmitterHealth, ProbeResult } from '../emitter.js';

/**
 * An emitter wrapping another: it keeps the inner emitter's name (routing by `route_to` must keep
 * matching) and forwards health, shutdown, init, probe and preferredBatchSize, so each wrapper only writes its own `emit`.
 */
export abstract class EmitterWrapper implements Emitter {
  readonly name: string;
  /** The wrapped emitter's probe, when it has one (polku validate --probe dials through wrappers). */
  readonly probe?: (signal: AbortSignal) => Promise<ProbeResult>;
  /** The wrapped emitter's: the batches it writes best are the same through a wrapper. */
  readonly preferredBatchSize?: number;
  /** The wrapped emitter's: the events it is handed are the ones given to the wrapper. */
  readonly wantsWireBytes: boolean;

  protected constructor(protected readonly inner: Emitter) {
    this.name = inner.name;
    if (inner.preferredBatchSize !== undefined) this.preferredBatchSize = inner.preferredBatchSize;
    this.wantsWireBytes = inner.wantsWireBytes === true;
    if (inner.probe) this.probe = (signal) => inner.probe!(signal);
  }

  abstract emit(events: readonly Event[]): Promise<EmitResult>;

  health(): EmitterHealth | Promise<EmitterHealth> {
    return this.inner.health ? this.inner.health() : { healthy: true, message: 'ok' };
  }

  async shutdown(): Promise<void> {
    await this.inner.shutdown?.();
  }

  init(ctx: ComponentContext): void {
    this.inner.init?.(ctx);
  }

  /** Calls the inner emitter, turning a throw or rejection into a retryable result. */
  protected async callInner(events: readonly Event[]): Promise<EmitResult> {
    try {
      return await this.inner.emit(events);
    } catch (err) {
      return { status: 'retryable', error: `emit threw: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
}
