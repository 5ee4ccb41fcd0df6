// Load for the Redis and NATS gateway tests: events sent to a real `polku serve` over
// StreamEvents, keeping the ids its Acks accepted.
import { AckStream, protoOnlyClient } from '../../helpers/gateway-harness.js';

export interface Load {
  /** Ids the gateway acknowledged, in order. */
  readonly acked: string[];
  /** Ends the stream and resolves once every batch sent has its Ack. */
  stop(): Promise<void>;
}

const event = (id: string, source: string) => ({
  id,
  source,
  event_type: 'bus.test',
  severity: 'SEVERITY_INFO',
  metadata: { 'k8s.namespace.name': 'shop' },
  payload: Buffer.from(`{"n":"${id}"}`),
});

/** Sends `n` events (ids `<tag>-<i>`) in batches of 100, one Ack at a time; resolves with the acked ids. */
export async function sendEvents(grpcPort: number, tag: string, n: number, source = 'svc-a'): Promise<string[]> {
  const client = protoOnlyClient(grpcPort);
  const stream = new AckStream(client);
  const acked: string[] = [];
  try {
    for (let i = 0; i < n; i += 100) {
      const ids = Array.from({ length: Math.min(100, n - i) }, (_, k) => `${tag}-${i + k}`);
      const ack = await stream.send({ source, events: { events: ids.map((id) => event(id, source)) } });
      acked.push(...ack.event_ids);
    }
    await stream.end();
  } finally {
    client.close();
  }
  return acked;
}

/**
 * Sends a batch of `batch` events every `everyMs` (ids `<tag>-<i>`) until `stop()`: steady load
 * at a known rate, whatever the destination is doing. Pacing, not waiting for a condition.
 */
export function steadyLoad(grpcPort: number, tag: string, batch = 100, everyMs = 50): Load {
  const client = protoOnlyClient(grpcPort);
  const stream = new AckStream(client);
  const acked: string[] = [];
  let stopped = false;
  let next = 0;
  const loop = (async () => {
    while (!stopped) {
      const ids = Array.from({ length: batch }, () => `${tag}-${next++}`);
      const ack = await stream.send({ source: 'load', events: { events: ids.map((id) => event(id, 'load')) } });
      acked.push(...ack.event_ids);
      await new Promise((r) => setTimeout(r, everyMs));
    }
    await stream.end();
    client.close();
  })();
  return {
    acked,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
