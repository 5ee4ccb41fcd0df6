/**
 * The OtlpEmitter's throughput: `npm run bench:otlp [-- --duration-ms 5000]`.
 *
 * The emitter runs in this process exactly as the delivery queue drives it (one batch in flight,
 * POLKU_BATCH_SIZE = 500 events each, or `--batch N`), against bench/otlp-sink.ts in another process, over gRPC
 * and over HTTP (each plain and gzip). Events are ~400 B like the gateway benchmark's, with the
 * metadata an agent's event carries (namespace, pod, node, a pod label, a trace id, a plain key).
 * Reports events/s per case (target ≥ 100,000/s) and the bytes per record on the wire.
 */
import { spawn } from 'node:child_process';
import { systemClock, systemTimers } from '../src/clock.js';
import { OtlpEmitter, type OtlpEmitterOptions } from '../src/emit/otlp.js';
import { Event, Severity } from '../src/gen/polku/v1/event.js';
import { silentLogger } from '../src/observability/logger.js';
import { createRegistry } from '../src/observability/metrics.js';

const TARGET = 100_000;
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const BATCH = arg('--batch', 500);
const DURATION_MS = arg('--duration-ms', 4_000);

const sink = spawn(process.execPath, ['--import', 'tsx', 'bench/otlp-sink.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => sink.kill('SIGKILL'));
const [grpcPort, httpPort] = await new Promise<[number, number]>((resolve, reject) => {
  sink.stdout!.on('data', (d: Buffer) => {
    const m = /READY (\d+) (\d+)/.exec(d.toString());
    if (m) resolve([Number(m[1]), Number(m[2])]);
  });
  sink.on('exit', (code) => reject(new Error(`sink exited ${code}`)));
});

/** Distinct batches, so nothing is cached across them: 20 batches of 500, reused round-robin. */
const batches = Array.from({ length: 20 }, (_, b) =>
  Array.from({ length: BATCH }, (_, i) =>
    Event.fromPartial({
      id: `01JBENCH${String(b).padStart(3, '0')}${String(i).padStart(6, '0')}`,
      timestampUnixNs: 1_764_560_000_000_000_000n + BigInt(b * BATCH + i),
      source: 'tapio',
      eventType: 'tapio.network.connection',
      severity: Severity.SEVERITY_INFO,
      metadata: {
        'k8s.namespace.name': `ns-${i % 4}`,
        'k8s.pod.name': `pod-${i % 50}`,
        'k8s.node.name': 'node-1',
        'k8s.pod.labels.app': 'shop',
        'net.peer.name': `svc-${i % 10}`,
        trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      },
      payload: Buffer.from(`{"bytes":${i},"msg":"${'x'.repeat(180)}"}`),
    }),
  ),
);

async function measure(label: string, options: OtlpEmitterOptions): Promise<number> {
  const emitter = new OtlpEmitter(options);
  emitter.init({ registry: createRegistry(), logger: silentLogger(), clock: systemClock, timers: systemTimers });
  for (let i = 0; i < 40; i++) await emitter.emit(batches[i % batches.length]!); // warm up
  let sent = 0;
  let k = 0;
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    const result = await emitter.emit(batches[k++ % batches.length]!);
    if (result.status !== 'success') throw new Error(`${label}: ${JSON.stringify(result)}`);
    sent += BATCH;
  }
  const perSec = (sent / (performance.now() - start)) * 1000;
  await emitter.shutdown();
  console.log(
    `${label.padEnd(22)} ${Math.round(perSec).toLocaleString('en-US').padStart(9)} events/s  ${perSec >= TARGET ? 'PASS' : 'MISS'}`,
  );
  return perSec;
}

console.log(
  `OtlpEmitter → bench/otlp-sink.ts, batches of ${BATCH}, ${DURATION_MS} ms per case, target >= ${TARGET.toLocaleString('en-US')} events/s`,
);
await measure('grpc', { endpoint: `127.0.0.1:${grpcPort}` });
await measure('grpc + gzip', { endpoint: `127.0.0.1:${grpcPort}`, compression: 'gzip' });
await measure('http', { protocol: 'http', endpoint: `http://127.0.0.1:${httpPort}` });
await measure('http + gzip', { protocol: 'http', endpoint: `http://127.0.0.1:${httpPort}`, compression: 'gzip' });
sink.kill('SIGTERM');
await new Promise((resolve) => sink.once('exit', resolve));
