import type { Receiver, ReceiverContext } from './receiver.js';

/**
 * A receiver whose code is loaded when it starts, not when the gateway's modules are. The OTLP
 * receiver (its codecs and a second gRPC server) costs several MB of resident memory just by
 * being imported, the HTTP front door (a node:http handler and the JSON ingestor) less
 * (docs/benchmarks.md, "Footprint"); a gateway
 * with their ports off never loads them. Only for receivers with no services on the shared gRPC
 * port: those are asked for while the gateway is built, before anything starts.
 */
export function lazyReceiver(name: string, load: () => Promise<Receiver>): Receiver {
  let inner: Receiver | null = null;
  return {
    name,
    async start(ctx: ReceiverContext): Promise<void> {
      inner = await load();
      await inner.start?.(ctx);
    },
    stopIntake(): void {
      inner?.stopIntake?.();
    },
    async close(): Promise<void> {
      await inner?.close?.();
    },
  };
}
