/**
 * A TCP proxy that reads the HTTP/2 frame headers (9 bytes: length, type, flags, stream id) going
 * each way and counts them, to see what a gRPC client's framing asks of a server
 * (docs/benchmarks.md, "OTLP/gRPC ingest": grpc-js, node:http2 and C-core clients compared).
 *
 *   node --import tsx bench/h2-frames.ts --listen 0 --target 127.0.0.1:4317
 *
 * prints `READY <port>`, forwards every connection to `--target` unchanged, and on SIGINT prints
 * one JSON object: per direction, frames and bytes by type, DATA frame sizes, HEADERS block sizes
 * and flags, and per call (client-opened streams) averages. Bytes are never changed or delayed
 * beyond the copy.
 */
import { connect, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { listen: { type: 'string', default: '0' }, target: { type: 'string' } },
  strict: true,
});
if (!values.target) throw new Error('--target host:port is required');
const [targetHost, targetPort] = [
  values.target.slice(0, values.target.lastIndexOf(':')),
  Number(values.target.slice(values.target.lastIndexOf(':') + 1)),
];

const TYPES = ['DATA', 'HEADERS', 'PRIORITY', 'RST_STREAM', 'SETTINGS', 'PUSH_PROMISE', 'PING', 'GOAWAY', 'WINDOW_UPDATE', 'CONTINUATION'];
const PREFACE = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

interface Direction {
  frames: Record<string, number>;
  bytes: Record<string, number>;
  /** DATA frame payload sizes, bucketed (0, ≤ 5, ≤ 1 KiB, ≤ 16 KiB, larger). */
  dataSizes: Record<string, number>;
  /** DATA frames with END_STREAM set, and of those, empty ones. */
  dataEndStream: number;
  emptyDataEndStream: number;
  headersEndStream: number;
  headersBlockBytes: number[];
  /** Frames per socket read: how many frames one read hands the server at once. */
  reads: number;
  streams: Set<number>;
}

const fresh = (): Direction => ({
  frames: {},
  bytes: {},
  dataSizes: {},
  dataEndStream: 0,
  emptyDataEndStream: 0,
  headersEndStream: 0,
  headersBlockBytes: [],
  reads: 0,
  streams: new Set(),
});
const toServer = fresh();
const toClient = fresh();
let connections = 0;

function bucket(n: number): string {
  if (n === 0) return '0';
  if (n <= 5) return '1-5';
  if (n <= 1024) return '6-1024';
  if (n <= 16384) return '1025-16384';
  return '>16384';
}

/** Parses frame headers out of a byte stream that arrives in arbitrary chunks. */
function frameCounter(d: Direction, skip: number): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let toSkip = skip;
  return (chunk) => {
    d.reads++;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    if (toSkip > 0) {
      const n = Math.min(toSkip, pending.length);
      toSkip -= n;
      at = n;
    }
    while (pending.length - at >= 9) {
      const length = pending.readUIntBE(at, 3);
      if (pending.length - at < 9 + length) break;
      const type = TYPES[pending[at + 3]!] ?? `type${pending[at + 3]}`;
      const flags = pending[at + 4]!;
      const stream = pending.readUInt32BE(at + 5) & 0x7fffffff;
      d.frames[type] = (d.frames[type] ?? 0) + 1;
      d.bytes[type] = (d.bytes[type] ?? 0) + 9 + length;
      if (type === 'DATA') {
        const b = bucket(length);
        d.dataSizes[b] = (d.dataSizes[b] ?? 0) + 1;
        if (flags & 1) {
          d.dataEndStream++;
          if (length === 0) d.emptyDataEndStream++;
        }
      } else if (type === 'HEADERS') {
        d.headersBlockBytes.push(length);
        if (flags & 1) d.headersEndStream++;
        if (stream !== 0) d.streams.add(stream + connections * 2 ** 31);
      }
      at += 9 + length;
    }
    pending = pending.subarray(at);
  };
}

const server = createServer((client: Socket) => {
  connections++;
  const upstream = connect(targetPort, targetHost);
  const countUp = frameCounter(toServer, PREFACE);
  const countDown = frameCounter(toClient, 0);
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.on('data', (chunk: Buffer) => {
    countUp(chunk);
    upstream.write(chunk);
  });
  upstream.on('data', (chunk: Buffer) => {
    countDown(chunk);
    client.write(chunk);
  });
  client.on('end', () => upstream.end());
  upstream.on('end', () => client.end());
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(Number(values.listen), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`READY ${typeof address === 'object' && address ? address.port : 0}\n`);
});

function summary(d: Direction, calls: number): object {
  const per = (n: number | undefined) => Number(((n ?? 0) / Math.max(1, calls)).toFixed(2));
  const blocks = d.headersBlockBytes;
  const firstBlocks = blocks.slice(0, 3);
  const laterBlocks = blocks.slice(Math.min(blocks.length, 64));
  return {
    frames: d.frames,
    bytes: d.bytes,
    framesPerCall: Object.fromEntries(Object.entries(d.frames).map(([t, n]) => [t, per(n)])),
    dataSizes: d.dataSizes,
    dataEndStreamPerCall: per(d.dataEndStream),
    emptyDataEndStreamPerCall: per(d.emptyDataEndStream),
    headersEndStreamPerCall: per(d.headersEndStream),
    headersBlockBytes: {
      first: firstBlocks,
      meanAfterWarmup: laterBlocks.length ? Number((laterBlocks.reduce((a, b) => a + b, 0) / laterBlocks.length).toFixed(1)) : null,
    },
    readsPerCall: per(d.reads),
    bytesPerCall: per(Object.values(d.bytes).reduce((a, b) => a + b, 0)),
  };
}

process.on('SIGINT', () => {
  const calls = toServer.streams.size;
  process.stdout.write(
    `${JSON.stringify({ connections, calls, toServer: summary(toServer, calls), toClient: summary(toClient, calls) }, null, 1)}\n`,
  );
  process.exit(0);
});
