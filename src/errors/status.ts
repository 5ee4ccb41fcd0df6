import type { status } from '@grpc/grpc-js';

/**
 * A gRPC status by name (`'RESOURCE_EXHAUSTED'`), as the catalogue records it. Names, not numbers:
 * the catalogue stays free of the gRPC runtime (the hub imports it and knows no transport), and a
 * receiver turns a name into grpc-js's number with `status[name]`.
 */
export type GrpcStatusName = keyof typeof status;
