import { PolkuGatewayReceiver } from './polku-gateway/gateway-receiver.js';
import { LegacyPorttiReceiver } from './portti/legacy-portti-receiver.js';
import { PorttiReceiver } from './portti/portti-receiver.js';
import type { OtlpReceiverOptions } from './otlp/otlp-receiver.js';
import type { HttpReceiverOptions, HttpSettings } from './http/http-receiver.js';
import { lazyReceiver } from './lazy-receiver.js';
import type { Receiver } from './receiver.js';

/**
 * The ways into every gateway, in the order their services are added. A new protocol is one
 * receiver file plus one line here (or, for embedders and tests, `GatewayOptions.receivers`).
 * Fresh instances each call: a receiver holds its open streams, so two gateways never share one.
 */
export function builtInReceivers(o: BuiltInReceiverOptions = {}): Receiver[] {
  return [
    new PolkuGatewayReceiver(),
    // PORTTI's own portti.v1.PorttiService (raw batches for the portti ingestor).
    new PorttiReceiver(),
    // The older polku.v1.PorttiService beside Gateway (K8sEvent → one event each).
    new LegacyPorttiReceiver(),
    // OpenTelemetry logs in, on ports of its own. Loaded only when on: its codecs and second gRPC
    // server are memory an agent-only gateway never uses.
    ...(o.otlp && (o.otlp.grpcAddr || o.otlp.httpAddr) ? [otlpReceiver(o.otlp)] : []),
    // The HTTP front door (POST /v1/events), on a port of its own; loaded only when on.
    ...(o.http?.addr ? [httpReceiver({ ...o.http, addr: o.http.addr })] : []),
  ];
}

/** Settings of the built-in receivers that have any; one left out is not started. */
export interface BuiltInReceiverOptions {
  /** OpenTelemetry logs in on ports of its own (POLKU_OTLP_*); absent or both ports off: not served. */
  otlp?: OtlpReceiverOptions | undefined;
  /** The HTTP front door (POLKU_HTTP_*); absent or its address off: not served. */
  http?: (HttpSettings & Pick<HttpReceiverOptions, 'tls' | 'connections'>) | undefined;
}

function otlpReceiver(o: OtlpReceiverOptions): Receiver {
  return lazyReceiver('otlp', async () => new (await import('./otlp/otlp-receiver.js')).OtlpReceiver(o));
}

function httpReceiver(o: HttpReceiverOptions): Receiver {
  return lazyReceiver('http', async () => new (await import('./http/http-receiver.js')).HttpReceiver(o));
}
