/**
 * The sinks' gateway path without a destination (bench/sinks/intake.config.ts): bench/loadgen.ts
 * paced at `rate` events/s (the rates the sinks reach, not the in-memory bench's full speed), and
 * the gateway's CPU per event forwarded. Subtracted from a sink's CPU per event in the same run,
 * it leaves what that sink's emitter costs inside the gateway.
 */
import { fmt, startGateway, stopGateway, storedPerSecUnderLoad, type SinkOptions, type SinkResult } from './bus-common.js';
import { counter } from './common.js';

export async function intakeOnly(opts: SinkOptions, rate: number): Promise<SinkResult> {
  const gw = await startGateway('bench/sinks/intake.config.ts', {});
  try {
    const forwarded = () => counter(gw.metricsUrl, 'polku_events_forwarded_total', { emitter: 'memory' });
    const { perSec, load, cpuUsPerEvent, cores } = await storedPerSecUnderLoad(gw, opts, forwarded, rate);
    return {
      sink: `intake at ${fmt(rate)}/s`,
      gatewayPerSec: perSec,
      rawPerSec: 0,
      ratio: 0,
      target: 0,
      gatewayCpuUsPerEvent: cpuUsPerEvent,
      notes: [
        `no destination: ingest, buffer and delivery alone; loadgen accepted ${fmt(load.acceptedPerSec)}/s, ack p50 ${load.ackLatencyMs.p50} ms`,
        cores,
      ],
    };
  } finally {
    await stopGateway(gw);
  }
}
