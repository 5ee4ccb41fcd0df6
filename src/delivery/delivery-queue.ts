import type { Emitter, EmitterHealth } from '../emit/emitter.js';
import type { Logger } from '../observability/logger.js';
import type { QueueGaugeSource } from './emitter-queue-metrics.js';

/**
 * What the hub needs of one emitter's queue, in memory or durable: routing reads `name` and
 * `isDefault`; admission `kick`s it; shutdown drains it.
 */
export interface DeliveryQueue extends QueueGaugeSource {
  readonly name: string;
  readonly emitter: Emitter;
  /** Whether events with an empty `route_to` go to this emitter. */
  readonly isDefault: boolean;
  /** New events were admitted: start sending if idle. */
  kick(): void;
  /** Send whatever is pending without waiting for a full batch. */
  startDraining(): void;
  /** Resolves when nothing is pending, in flight or waiting for a retry. */
  whenIdle(): Promise<void>;
  /** Events of the batch being sent now (0 when none is). */
  readonly inFlightCount: number;
  /** Stops at the drain deadline; returns how many events this queue had not delivered. */
  abandon(): number;
  health(): Promise<EmitterHealth>;
}

/**
 * A queue's health: its last send's failure if the last send failed, else what the emitter says
 * of itself (healthy when it has no health check; a check that throws is an unhealthy answer).
 */
export async function queueHealth(lastError: string | null, emitter: Emitter): Promise<EmitterHealth> {
  if (lastError !== null) return { healthy: false, message: lastError };
  if (!emitter.health) return { healthy: true, message: 'ok' };
  try {
    return await emitter.health();
  } catch (err) {
    return { healthy: false, message: `health check threw: ${(err as Error).message}` };
  }
}

/** Each queue's health, keyed `emitter:<name>`, in queue order. */
export async function emitterHealthOf(queues: readonly DeliveryQueue[]): Promise<Record<string, { healthy: boolean; message: string }>> {
  const answers = await Promise.all(queues.map((q) => q.health()));
  const components: Record<string, { healthy: boolean; message: string }> = {};
  queues.forEach((q, i) => {
    const h = answers[i]!;
    components[`emitter:${q.name}`] = { healthy: h.healthy, message: h.message ?? (h.healthy ? 'ok' : 'unhealthy') };
  });
  return components;
}

/**
 * Tells every queue to send what it holds and waits until all are idle or `timeoutMs` passes.
 * The deadline is a real (ref'd) timer: it must hold the process open until it passes.
 */
export async function drainQueues(queues: readonly DeliveryQueue[], timeoutMs: number): Promise<'idle' | 'timeout'> {
  for (const q of queues) q.startDraining();
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    deadline = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const idle = Promise.all(queues.map((q) => q.whenIdle())).then(() => 'idle' as const);
  const result = await Promise.race([idle, timedOut]);
  clearTimeout(deadline);
  return result;
}

/**
 * A queue taken out of routing by a reload: it sends what it holds, then its emitter shuts down.
 * Resolves with how many events it still held at `timeoutMs` (given up by the caller's rules).
 */
export async function retireQueue(queue: DeliveryQueue, timeoutMs: number, log: Logger): Promise<number> {
  const result = await drainQueues([queue], timeoutMs);
  const left = result === 'timeout' ? queue.abandon() : 0;
  await shutdownEmitters([queue], log);
  return left;
}

/** Shuts every queue's emitter down, in parallel; a failure is logged, never thrown. */
export async function shutdownEmitters(queues: readonly DeliveryQueue[], log: Logger): Promise<void> {
  await Promise.all(
    queues.map(async (q) => {
      try {
        await q.emitter.shutdown?.();
      } catch (err) {
        log.warn({ emitter: q.name, err }, 'emitter shutdown failed');
      }
    }),
  );
}
