import { status, type Server, type ServerDuplexStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  ServerReflectionService as V1,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from '../gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionService as V1Alpha } from '../gen/grpc/reflection/v1alpha/reflection.js';
import type { GrpcServiceBinding } from '../receive/receiver.js';
import { builtInDescriptorSet, DescriptorIndex } from './reflection-index.js';

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha: grpcurl and Postman ask v1 first, older
 * tools v1alpha), answered from FileDescriptorProtos exactly as buf built them.
 *
 * Not `@grpc/reflection`: it rebuilds descriptors from a proto-loader package definition, and
 * those come out without their `dependency` list and with map entries named wrongly, so strict
 * clients (grpcurl, Postman, Python's descriptor_pool) cannot build them — grpc/grpc-node#3034
 * ("lost dependency info"), grpc/grpc-node#3018 (imports unresolvable), fullstorydev/grpcurl#519
 * ("invalid map: incorrect implicit map entry name"). Here the descriptors come from
 * `buf build` of proto/ (src/gen/descriptor-set.ts, written by `npm run gen`), plus any a
 * receiver supplies for a service whose proto is not in proto/ (`GrpcServiceBinding.descriptorSet`).
 * Every answer carries the file and all it imports, transitively.
 */

/** The reflection services, served beside the gateway's own and listed by themselves. */
export const REFLECTION_SERVICE_NAMES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'] as const;

/** One answer to one request: the part of the response that depends on the request. */
export function answer(
  index: DescriptorIndex,
  services: readonly string[],
  request: ServerReflectionRequest,
): ServerReflectionResponse['messageResponse'] {
  const files = (name: string | undefined, notFound: string): ServerReflectionResponse['messageResponse'] => {
    const found = name === undefined ? undefined : index.withDependencies(name);
    return found
      ? { $case: 'fileDescriptorResponse', value: { fileDescriptorProto: found } }
      : { $case: 'errorResponse', value: { errorCode: status.NOT_FOUND, errorMessage: notFound } };
  };
  const r = request.messageRequest;
  switch (r?.$case) {
    case 'listServices':
      return { $case: 'listServicesResponse', value: { service: services.map((name) => ({ name })) } };
    case 'fileByFilename':
      return files(r.value, `file not found: ${r.value}`);
    case 'fileContainingSymbol':
      return files(index.fileOfSymbol(r.value), `symbol not found: ${r.value}`);
    case 'fileContainingExtension': {
      const { containingType, extensionNumber } = r.value;
      return files(
        index.fileOfExtension(containingType, extensionNumber),
        `extension not found: ${containingType} field ${extensionNumber}`,
      );
    }
    case 'allExtensionNumbersOfType': {
      const numbers = index.extensionNumbers(r.value);
      return numbers
        ? { $case: 'allExtensionNumbersResponse', value: { baseTypeName: r.value, extensionNumber: numbers } }
        : { $case: 'errorResponse', value: { errorCode: status.NOT_FOUND, errorMessage: `type not found: ${r.value}` } };
    }
    default:
      return {
        $case: 'errorResponse',
        value: { errorCode: status.INVALID_ARGUMENT, errorMessage: 'the request names no message_request' },
      };
  }
}

/**
 * Adds grpc.reflection.v1 and v1alpha ServerReflection to `server`. `services` is what
 * list_services answers (the served services whose descriptors are in `index`, health, and the
 * reflection services). One response per request on the bidi stream, in order; an unknown name is
 * an error_response (NOT_FOUND), not the end of the stream.
 */
export function addReflection(server: Server, index: DescriptorIndex, services: readonly string[]): void {
  const listed = [...services].sort();
  const handler = (call: ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>): void => {
    call.on('data', (request: ServerReflectionRequest) => {
      const response = { validHost: request.host, originalRequest: request, messageResponse: answer(index, listed, request) };
      // A client that asks without reading would have answers (kilobytes each) pile up here:
      // stop reading its requests until it has taken what was written, so HTTP/2 flow control
      // holds it back instead.
      if (!call.write(response)) {
        call.pause();
        call.once('drain', () => call.resume());
      }
    });
    call.on('end', () => call.end());
    call.on('error', () => undefined);
  };
  server.addService(V1, { serverReflectionInfo: handler } as UntypedServiceImplementation);
  server.addService(V1Alpha, { serverReflectionInfo: handler } as UntypedServiceImplementation);
}

/** The full name of the service a grpc-js definition serves (`/pkg.Service/Method` → `pkg.Service`). */
function serviceName(definition: GrpcServiceBinding['definition']): string | undefined {
  const first = Object.values(definition)[0];
  return first?.path.split('/')[1];
}

/**
 * Server reflection's table: proto/'s descriptor set plus the bindings' own, and the names
 * list_services answers — every served service reflection can describe, grpc.health.v1.Health and
 * the reflection services — sorted. A served service with no descriptor is `missing` (logged).
 */
export function reflectedServices(services: readonly GrpcServiceBinding[]): {
  index: DescriptorIndex;
  listed: string[];
  missing: string[];
} {
  const index = new DescriptorIndex();
  index.addSet(builtInDescriptorSet());
  for (const s of services) if (s.descriptorSet) index.addSet(s.descriptorSet);
  const listed = new Set<string>(['grpc.health.v1.Health', ...REFLECTION_SERVICE_NAMES]);
  const missing: string[] = [];
  for (const s of services) {
    const name = serviceName(s.definition);
    if (name === undefined) continue;
    if (index.hasService(name)) listed.add(name);
    else missing.push(name);
  }
  return { index, listed: [...listed].sort(), missing };
}
