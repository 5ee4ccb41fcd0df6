import { PluginType, type PluginInfo } from '../gen/polku/v1/plugin.js';
import { fillTemplate, isPolkuError, PolkuError, type ErrorCode } from '../errors.js';
import { pluginTarget } from '../plugin-client/address.js';

/** What a plugin does for the gateway. */
export type PluginKind = 'emitter' | 'ingestor';

/** Where a row of the live table came from. */
export type PluginOrigin = 'registered' | 'kubernetes' | 'static';

/** A plugin as the table keeps it: checked, complete and bounded. */
export interface PluginSpec {
  /** `PluginInfo.name`: the table's key, the ingestor's name, and the name in logs. */
  readonly name: string;
  readonly kind: PluginKind;
  /** The address as the plugin (or the Service) gave it, `host:port` or `http://host:port`. */
  readonly address: string;
  /** Emitters: the name events use in `route_to` (`emitter_name`, else `name`). '' for ingestors. */
  readonly emitterName: string;
  /** Ingestors: the batch sources the plugin parses. Empty for emitters. */
  readonly sources: readonly string[];
  readonly version: string;
  readonly description: string;
}

/** The catalogue's codes for refusals of the plugin table, the registry service and discovery. */
export type RegistryErrorCode = Extract<
  ErrorCode,
  `POLKU_ERR_REGISTRY_${string}` | `POLKU_ERR_PLUGIN_${string}` | 'POLKU_ERR_DISCOVERY_INVALID'
>;

/**
 * A refusal of the plugin table. The registry service answers it with the code's gRPC status from
 * the error catalogue (`grpcStatus`); discovery logs it and retries later.
 */
export class RegistryError extends PolkuError {
  declare readonly code: RegistryErrorCode;

  constructor(code: RegistryErrorCode, message: string) {
    super(code, message);
    this.name = 'RegistryError';
  }

  /** A refusal whose message is the code's template filled with `args`. */
  static of(code: RegistryErrorCode, ...args: unknown[]): RegistryError {
    return new RegistryError(code, fillTemplate(code, args).message);
  }
}

/** Names (plugin and emitter) end up in metric labels, logs and `route_to`: a DNS-label-like shape. */
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const MAX_SOURCES = 32;
const MAX_SOURCE_LENGTH = 128;
const MAX_TEXT = 256;

/** Checks a plugin or emitter name; returns why it is unusable, or undefined. */
export function nameProblem(what: string, name: string): string | undefined {
  if (typeof name !== 'string' || name === '') return `${what} is empty`;
  if (!NAME.test(name)) {
    return `${what} ${JSON.stringify(name.slice(0, 80))} must be 1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Checks an ingestor's sources; returns why they are unusable, or undefined. */
export function sourcesProblem(sources: readonly string[]): string | undefined {
  if (sources.length === 0) return 'an ingestor must list at least one source';
  if (sources.length > MAX_SOURCES) return `an ingestor may list at most ${MAX_SOURCES} sources, got ${sources.length}`;
  if (new Set(sources).size !== sources.length) return 'sources repeat a name';
  const bad = sources.find((s) => typeof s !== 'string' || s === '' || s.length > MAX_SOURCE_LENGTH || /[\s,]/.test(s));
  if (bad !== undefined)
    return `source ${JSON.stringify(String(bad).slice(0, 80))} must be 1-${MAX_SOURCE_LENGTH} characters without spaces or commas`;
  return undefined;
}

/** The grpc-js target for an address, or a RegistryError(INVALID_ARGUMENT) saying why not. */
export function targetOf(name: string, address: string): string {
  try {
    return pluginTarget(name, address);
  } catch (err) {
    throw new RegistryError('POLKU_ERR_REGISTRY_INVALID', isPolkuError(err) ? err.message : String(err));
  }
}

/**
 * Turns a `RegisterRequest` into a spec: a name; a type; an address (`host:port` or
 * `http://host:port`); an ingestor lists at least one source; an emitter's route name is its
 * `emitter_name`, else its name. Anything else is refused INVALID_ARGUMENT.
 */
export function specFromRegistration(info: PluginInfo | undefined, address: string): PluginSpec {
  const invalid = (why: string): RegistryError => new RegistryError('POLKU_ERR_REGISTRY_INVALID', why);
  if (!info) throw invalid('RegisterRequest.info is missing');
  const name = info.name;
  const problem = nameProblem('PluginInfo.name', name);
  if (problem) throw invalid(problem);
  const kind = kindOf(info.type);
  if (!kind) throw invalid(`plugin "${name}": PluginInfo.type must be PLUGIN_TYPE_EMITTER or PLUGIN_TYPE_INGESTOR`);
  if (typeof address !== 'string' || address.length > 300) throw invalid(`plugin "${name}": address must be host:port`);
  targetOf(name, address); // validates the form
  let emitterName = '';
  let sources: string[] = [];
  if (kind === 'emitter') {
    emitterName = info.emitterName || name;
    const bad = nameProblem('PluginInfo.emitter_name', emitterName);
    if (bad) throw invalid(`plugin "${name}": ${bad}`);
  } else {
    sources = [...info.sources];
    const bad = sourcesProblem(sources);
    if (bad) throw invalid(`plugin "${name}": ${bad}`);
  }
  return { name, kind, address, emitterName, sources, version: clip(info.version), description: clip(info.description) };
}

export function kindOf(type: PluginType): PluginKind | undefined {
  if (type === PluginType.PLUGIN_TYPE_EMITTER) return 'emitter';
  if (type === PluginType.PLUGIN_TYPE_INGESTOR) return 'ingestor';
  return undefined;
}

/** Whether two specs would run the same component (name, kind, route name and sources). */
export function sameComponent(a: PluginSpec, b: PluginSpec): boolean {
  return (
    a.name === b.name &&
    a.kind === b.kind &&
    a.emitterName === b.emitterName &&
    a.sources.length === b.sources.length &&
    a.sources.every((s, i) => s === b.sources[i])
  );
}

function clip(text: string | undefined): string {
  return (text ?? '').slice(0, MAX_TEXT);
}
