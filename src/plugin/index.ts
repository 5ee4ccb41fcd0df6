/**
 * POLKU's plugin SDK (`polku/plugin`): write an emitter or an ingestor in TypeScript and let the
 * gateway call it over gRPC. It depends only on the wire contract (`polku.v1` plugin.proto) and
 * grpc-js, never on the gateway's internals.
 *
 * ```ts
 * import { serveEmitter } from 'polku/plugin';
 * await serveEmitter({ name: 'slack', port: 9001, emit: (events) => { for (const e of events) console.log(e.eventType); } });
 * ```
 */
export { serveEmitter, toEmitResponse, type EmitterPluginOptions, type EmitOutcome, type EmitFailure } from './emitter.js';
export {
  serveIngestor,
  toIngestResponse,
  type IngestorPluginOptions,
  type IngestOutcome,
  type IngestContext,
  type IngestProblem,
  type EventInit,
} from './ingestor.js';
export type { PluginOptions, PluginServer, PluginHealth, RegisterOptions } from './options.js';
export { commandLineOptions, type CommandLineOptions } from './command-line.js';
export { silentLogger, systemTimers, type PluginLogger, type PluginTimers } from './runtime.js';
export { DEFAULT_HEARTBEAT_INTERVAL_MS } from './registration.js';
export { DEFAULT_PLUGIN_TLS_REFRESH_MS, type PluginDialTls, type PluginServeTls } from './tls.js';

export { Event, Severity, Outcome } from '../gen/polku/v1/event.js';
export { PluginInfo, PluginType } from '../gen/polku/v1/plugin.js';
