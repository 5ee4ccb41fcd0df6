import { EbpfType, EventBatch, RawEbpfEvent } from '../../src/gen/tapio/v1/raw.js';

/**
 * A TAPIO network event as the agent reports one (a TCP retransmit between two pods), its DNS
 * query name stretched so the encoded event is about `eventBytes`.
 */
export function tapioEvent(id: string, timestampUnixNs: bigint, eventBytes: number): RawEbpfEvent {
  const event = RawEbpfEvent.fromPartial({
    id,
    timestamp: { seconds: timestampUnixNs / 1_000_000_000n, nanos: Number(timestampUnixNs % 1_000_000_000n) },
    type: EbpfType.EBPF_TYPE_NETWORK,
    subtype: 'tcp_retransmit',
    clusterId: 'bench',
    nodeName: 'bench-node-1',
    namespace: 'default',
    podName: 'checkout-7d9f8c6b5-x2k4q',
    containerId: 'containerd://4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b',
    containerName: 'checkout',
    data: {
      $case: 'network',
      value: {
        protocol: 'tcp',
        srcIp: '10.244.1.17',
        srcPort: 43872,
        dstIp: '10.244.3.9',
        dstPort: 5432,
        srcPod: 'checkout-7d9f8c6b5-x2k4q',
        dstPod: 'postgres-0',
        dstService: 'postgres.default.svc.cluster.local',
        bytesSent: 18_234n,
        bytesRecv: 96_110n,
        rttUs: 1_840n,
        retransmits: 3n,
        dnsQuery: '',
        errorCode: '',
      },
    },
  });
  const room = eventBytes - RawEbpfEvent.encode(event).finish().length - 3;
  if (room > 0 && event.data?.$case === 'network') event.data.value.dnsQuery = `${'q'.repeat(room)}.svc`.slice(-room);
  return event;
}

/**
 * A `tapio.v1.EventBatch` of `batch` such events (ids `<prefix>-<n>`), encoded, as bench/loadgen.ts
 * `--tapio` sends it inside `IngestBatch.raw`.
 */
export function tapioBatch(batch: number, eventBytes: number, prefix = 'bench'): Uint8Array {
  const timestampUnixNs = BigInt(Date.now()) * 1_000_000n;
  const events = Array.from({ length: batch }, (_, e) =>
    tapioEvent(`${prefix}-${String(e).padStart(5, '0')}`, timestampUnixNs, eventBytes),
  );
  return EventBatch.encode({ events, source: 'tapio', clusterId: 'bench', nodeName: 'bench-node-1' }).finish();
}
