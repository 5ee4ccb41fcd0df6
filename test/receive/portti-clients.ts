import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { RawK8sEvent } from '../../src/gen/portti/v1/raw.js';
import { strictReader } from '../../src/ingest/event-decoder.js';
import type { Ingestor, IngestProblem } from '../../src/ingest/ingestor.js';
import { PROTO_DIR } from '../helpers/gateway-harness.js';

/**
 * Clients of PORTTI's two services made the way PORTTI is: from the .proto files alone, through
 * proto-loader (none of this project's server code), plus a raw-bytes client for messages no
 * well-behaved encoder would produce (invalid UTF-8, garbage).
 */
const LOAD = { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

export type ProtoClient = grpc.Client & Record<string, any>;

/** A `portti.v1.PorttiService` client from proto/portti/v1/raw.proto. */
export function porttiClient(port: number): ProtoClient {
  const pkg = grpc.loadPackageDefinition(loadSync('portti/v1/raw.proto', LOAD)) as any;
  return new pkg.portti.v1.PorttiService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** A `polku.v1.PorttiService` client from proto/polku/v1/gateway.proto. */
export function legacyPorttiClient(port: number): ProtoClient {
  const pkg = grpc.loadPackageDefinition(loadSync('polku/v1/gateway.proto', LOAD)) as any;
  return new pkg.polku.v1.PorttiService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** A message as `portti.v1.Ack` (proto-loader's shape: int64 as a string). */
export interface WirePorttiAck {
  event_ids: string[];
  buffer_size: string;
}

/**
 * A bidirectional call driven message by message: `send` writes one message and resolves with
 * the answer to it (answers come in order); `status` is the call's end. `write` takes what the
 * call's serializer takes (an object for a proto-loader client, bytes for {@link rawBidi}).
 */
export class AnswerStream<T> {
  private readonly waiting: Array<{ resolve: (a: T) => void; reject: (e: Error) => void }> = [];
  readonly answers: T[] = [];
  readonly status: Promise<grpc.StatusObject>;

  constructor(private readonly call: grpc.ClientDuplexStream<unknown, T>) {
    call.on('data', (a: T) => {
      this.answers.push(a);
      this.waiting.shift()?.resolve(a);
    });
    this.status = new Promise((resolve) => call.on('status', resolve));
    call.on('error', (err: Error) => {
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  send(message: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write(message);
    });
  }

  end(): Promise<grpc.StatusObject> {
    this.call.end();
    return this.status;
  }
}

/** A streaming call to `path` that sends bytes as they are and decodes answers with `decode`. */
export function rawBidi<T>(port: number, path: string, decode: (b: Buffer) => T): { stream: AnswerStream<T>; client: grpc.Client } {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(path, (b: Uint8Array) => Buffer.from(b), decode) as grpc.ClientDuplexStream<unknown, T>;
  return { stream: new AnswerStream<T>(call), client };
}

/** A unary call to `path` with the request as bytes. */
export function rawUnary<T>(port: number, path: string, request: Uint8Array, decode: (b: Buffer) => T): Promise<T> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise<T>((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (b: Uint8Array) => Buffer.from(b),
      decode,
      request,
      (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res!);
      },
    );
  });
}

/** `bytes` with the one occurrence of the ASCII `marker` replaced by as many 0xff bytes (not UTF-8). */
export function spoilUtf8(bytes: Uint8Array, marker: string): Uint8Array {
  const out = Buffer.from(bytes);
  const at = out.indexOf(marker);
  if (at < 0 || out.indexOf(marker, at + 1) >= 0) throw new Error(`marker ${marker} must occur exactly once`);
  out.fill(0xff, at, at + marker.length);
  return out;
}

/** A portti.v1.RawK8sEvent in proto-loader's shape (snake_case, enums by name, int64 as strings). */
export type LoaderRawK8sEvent = Record<string, unknown> & { id: string };

/** Three PORTTI events, one per action, with labels, annotations, object and old_object. */
export function porttiEvents(prefix: string): LoaderRawK8sEvent[] {
  const base = {
    timestamp: { seconds: '1796292000', nanos: 123456789 },
    namespace: 'shop',
    uid: 'uid-1',
    cluster_id: 'c1',
    resource_version: '42',
    generation: '7',
    labels: { app: 'cart', tier: 'web' },
    annotations: { 'deployment.kubernetes.io/revision': '3' },
  };
  return [
    {
      ...base,
      id: `${prefix}-create`,
      resource: 'RESOURCE_DEPLOYMENT',
      action: 'ACTION_CREATE',
      name: 'cart',
      object: Buffer.from('{"kind":"Deployment","metadata":{"name":"cart"}}'),
    },
    {
      ...base,
      id: `${prefix}-update`,
      resource: 'RESOURCE_POD',
      action: 'ACTION_UPDATE',
      name: 'cart-7d9f',
      object: Buffer.from('{"kind":"Pod","status":{"phase":"Running"}}'),
      old_object: Buffer.from('{"kind":"Pod","status":{"phase":"Pending"}}'),
    },
    {
      ...base,
      id: `${prefix}-delete`,
      resource: 'RESOURCE_CONFIGMAP',
      action: 'ACTION_DELETE',
      name: 'cart-config',
      old_object: Buffer.from('{"kind":"ConfigMap","data":{"a":"1"}}'),
      labels: {},
      annotations: {},
    },
  ];
}

const definitions = loadSync(['portti/v1/raw.proto', 'polku/v1/gateway.proto'], LOAD) as any;

/** Encodes a message as the proto-loader client would send it (the protos' own encoder). */
export const encode = {
  porttiBatch: (batch: Record<string, unknown>): Buffer => definitions['portti.v1.PorttiService'].StreamK8sEvents.requestSerialize(batch),
  k8sEventBatch: (batch: Record<string, unknown>): Buffer => definitions['polku.v1.PorttiService'].StreamK8sEvents.requestSerialize(batch),
  k8sEvent: (event: Record<string, unknown>): Buffer => definitions['polku.v1.PorttiService'].SendK8sEvent.requestSerialize(event),
};

/** Decodes answers as a proto-loader client does. */
export const decode = {
  porttiAck: (b: Buffer): WirePorttiAck => definitions['portti.v1.PorttiService'].StreamK8sEvents.responseDeserialize(b),
  ack: (b: Buffer): any => definitions['polku.v1.PorttiService'].StreamK8sEvents.responseDeserialize(b),
  sendResponse: (b: Buffer): { success: boolean; error: string } =>
    definitions['polku.v1.PorttiService'].SendK8sEvent.responseDeserialize(b),
};

/**
 * A stand-in for the portti ingestor (the real one is src/ingest/agents/portti.ts): claims source
 * `portti`, decodes each RawK8sEvent strictly on its own, and makes one event per RawK8sEvent with
 * its id and its bytes as payload; an event that does not decode is a PARSE_ERROR. It records what
 * it was handed so tests can check the receiver passed the bytes untouched.
 */
export class StandInPorttiIngestor implements Ingestor {
  readonly name = 'portti-stand-in';
  readonly sources = ['portti'];
  readonly received: Array<{ data: Uint8Array; source: string; cluster: string; format: string }> = [];

  ingest(ctx: { source: string; cluster: string; format: string }, data: Uint8Array): { events: Event[]; problems: IngestProblem[] } {
    this.received.push({ data: Uint8Array.from(data), source: ctx.source, cluster: ctx.cluster, format: ctx.format });
    const events: Event[] = [];
    const problems: IngestProblem[] = [];
    const reader = new BinaryReader(data);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag !== 10) {
        reader.skip(tag & 7);
        continue;
      }
      const bytes = reader.bytes();
      try {
        const raw = RawK8sEvent.decode(strictReader(bytes));
        events.push({
          id: raw.id,
          timestampUnixNs: 0n,
          source: 'portti',
          eventType: 'portti.stand-in',
          metadata: {},
          payload: bytes,
          routeTo: [],
          severity: 0,
          outcome: 0,
        });
      } catch (err) {
        problems.push({ message: `RawK8sEvent: ${(err as Error).message}` });
      }
    }
    return { events, problems };
  }
}
