import { status as grpcStatus, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

/** grpc.health.v1.HealthCheckResponse.ServingStatus (proto/grpc/health/v1/health.proto). */
export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const STATUS_NUMBER: Record<ServingStatus, number> = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 };

/** List answers at most this many services, as grpc-go and grpc-js's own health service do. */
const LIST_LIMIT = 100;

/**
 * grpc.health.v1.Health (Check, Watch, List) for the gateway's gRPC port, as Kubernetes gRPC
 * probes and grpc_health_probe ask it. Its own because the `grpc-health-check` package builds its
 * codecs with @grpc/proto-loader and protobufjs at import, about 5 MB of resident memory for three
 * messages of one field each (docs/benchmarks.md, "Footprint"); these are encoded here with the
 * wire helpers of @bufbuild/protobuf, which the generated codecs load anyway.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<(s: ServingStatus) => void>>();

  constructor(initial: Record<string, ServingStatus>) {
    for (const [name, s] of Object.entries(initial)) this.statuses.set(name, s);
  }

  setStatus(service: string, s: ServingStatus): void {
    this.statuses.set(service, s);
    for (const watcher of this.watchers.get(service) ?? []) watcher(s);
  }

  readonly definition: ServiceDefinition = HEALTH_DEFINITION;

  implementation(): UntypedServiceImplementation {
    return {
      Check: (call: ServerUnaryCall<CheckRequest, ServingStatus>, callback: sendUnaryData<ServingStatus>) => {
        const s = this.statuses.get(call.request.service);
        if (s) callback(null, s);
        else callback({ code: grpcStatus.NOT_FOUND, details: `Health status unknown for service ${call.request.service}` });
      },
      Watch: (call: ServerWritableStream<CheckRequest, ServingStatus>) => {
        const service = call.request.service;
        const watcher = (s: ServingStatus): void => void call.write(s);
        let set = this.watchers.get(service);
        if (!set) this.watchers.set(service, (set = new Set()));
        set.add(watcher);
        call.on('cancelled', () => {
          set.delete(watcher);
          if (set.size === 0) this.watchers.delete(service);
        });
        call.write(this.statuses.get(service) ?? 'SERVICE_UNKNOWN');
      },
      List: (_call: ServerUnaryCall<object, Map<string, ServingStatus>>, callback: sendUnaryData<Map<string, ServingStatus>>) => {
        if (this.statuses.size > LIST_LIMIT) callback({ code: grpcStatus.RESOURCE_EXHAUSTED, details: 'Too many services to list.' });
        else callback(null, new Map(this.statuses));
      },
    };
  }
}

/** HealthCheckRequest { string service = 1; }; unknown fields skipped. An object, never '': grpc-js takes a falsy request for none. */
function decodeCheckRequest(bytes: Buffer): CheckRequest {
  const r = new BinaryReader(bytes);
  let service = '';
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) service = r.string();
    else r.skip(wire, field);
  }
  return { service };
}

interface CheckRequest {
  service: string;
}

/** HealthCheckResponse { ServingStatus status = 1; } (0 is the default: nothing written). */
function writeCheckResponse(w: BinaryWriter, s: ServingStatus): BinaryWriter {
  const n = STATUS_NUMBER[s];
  if (n !== 0) w.tag(1, WireType.Varint).int32(n);
  return w;
}

function encodeCheckResponse(s: ServingStatus): Buffer {
  return Buffer.from(writeCheckResponse(new BinaryWriter(), s).finish());
}

/** HealthListResponse { map<string, HealthCheckResponse> statuses = 1; }: one entry message per service. */
function encodeListResponse(statuses: Map<string, ServingStatus>): Buffer {
  const w = new BinaryWriter();
  for (const [name, s] of statuses) {
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(name);
    w.tag(2, WireType.LengthDelimited).fork();
    writeCheckResponse(w, s);
    w.join().join();
  }
  return Buffer.from(w.finish());
}

// The client's half, which grpc-js wants in a definition too (a server never calls it).
function encodeCheckRequest({ service }: CheckRequest): Buffer {
  const w = new BinaryWriter();
  if (service !== '') w.tag(1, WireType.LengthDelimited).string(service);
  return Buffer.from(w.finish());
}

const STATUS_NAMES = Object.keys(STATUS_NUMBER) as ServingStatus[];

function decodeCheckResponse(bytes: Buffer): ServingStatus {
  const r = new BinaryReader(bytes);
  let s: ServingStatus = 'UNKNOWN';
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.Varint) s = STATUS_NAMES[r.int32()] ?? 'UNKNOWN';
    else r.skip(wire, field);
  }
  return s;
}

const HEALTH_DEFINITION = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeCheckRequest,
    requestDeserialize: decodeCheckRequest,
    responseSerialize: encodeCheckResponse,
    responseDeserialize: decodeCheckResponse,
    originalName: 'check',
  },
  Watch: {
    path: '/grpc.health.v1.Health/Watch',
    requestStream: false,
    responseStream: true,
    requestSerialize: encodeCheckRequest,
    requestDeserialize: decodeCheckRequest,
    responseSerialize: encodeCheckResponse,
    responseDeserialize: decodeCheckResponse,
    originalName: 'watch',
  },
  List: {
    path: '/grpc.health.v1.Health/List',
    requestStream: false,
    responseStream: false,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: () => ({}),
    responseSerialize: encodeListResponse,
    // Not needed by anything here; a client wanting List decodes with its own codecs.
    responseDeserialize: (bytes: Buffer) => bytes,
    originalName: 'list',
  },
} satisfies ServiceDefinition;
