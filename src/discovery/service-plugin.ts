import { isIP } from 'node:net';
import type { PluginKind } from '../registry/plugin-spec.js';
import { nameProblem, sourcesProblem } from '../registry/plugin-spec.js';

/** The label that marks a plugin Service; its value is the plugin's type. */
export const PLUGIN_LABEL = 'polku.io/plugin';
/** Which Services discovery watches without POLKU_DISCOVERY_LABEL_SELECTOR: those with the label. */
export const DEFAULT_LABEL_SELECTOR = PLUGIN_LABEL;
export const NAME_ANNOTATION = 'polku.io/name';
export const EMITTER_NAME_ANNOTATION = 'polku.io/emitter-name';
export const PORT_ANNOTATION = 'polku.io/port';
export const SOURCES_ANNOTATION = 'polku.io/sources';
/** The EndpointSlice controller labels each slice with its Service's name. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The parts of a v1 Service discovery reads (typed list items and raw watch objects alike). */
export interface ServiceObject {
  metadata?: Meta;
  spec?: {
    type?: string;
    clusterIP?: string;
    externalName?: string;
    /** Pods the Service selects; without one its endpoints are managed by hand. */
    selector?: Record<string, string>;
    ports?: Array<{ name?: string; port: number; targetPort?: number | string }>;
  };
}

/** The parts of a discovery.k8s.io/v1 EndpointSlice discovery reads. */
export interface EndpointSliceObject {
  metadata?: Meta;
  endpoints?: Array<{
    addresses?: string[];
    nodeName?: string | null;
    conditions?: { ready?: boolean | null; terminating?: boolean | null };
  }>;
  ports?: Array<{ name?: string | null; port?: number | null }> | null;
}

/** A plugin as a Service describes it; emitter name and sources may still come from its Info. */
export interface DiscoveredPlugin {
  /** `namespace/name` of the Service. */
  readonly service: string;
  readonly name: string;
  readonly kind: PluginKind;
  /** What the gateway dials: a same-node endpoint, else the cluster IP (or external name). */
  readonly address: string;
  /** From `polku.io/emitter-name`; undefined: the plugin's Info says. */
  readonly emitterName?: string;
  /** From `polku.io/sources`; undefined: the plugin's Info says. */
  readonly sources?: readonly string[];
  /** True when `address` is an endpoint on this gateway's own node. */
  readonly sameNode: boolean;
}

export const serviceKey = (meta: Meta | undefined): string => `${meta?.namespace ?? ''}/${meta?.name ?? ''}`;

/**
 * Reads a plugin from its Service: the type from the `polku.io/plugin` label (`emitter` or
 * `ingestor`); `polku.io/name` (default: the Service's name); `polku.io/port`, a port number or
 * name (needed when the Service has several ports); `polku.io/emitter-name`; `polku.io/sources`
 * (comma-separated). The address prefers a ready endpoint on `nodeName` (from the Service's
 * EndpointSlices, dialled directly on its target port); else the cluster IP; a headless Service
 * takes any ready endpoint. Returns a problem in words when the Service cannot be used.
 */
/** Why a Service cannot be used, with its plugin's type once the label gave it (for `polku plugins`). */
export interface ServiceProblem {
  problem: string;
  kind?: PluginKind;
  /** Not a fault: the Service is fine and waits for a ready pod. */
  waiting?: true;
}

/**
 * `endpointsKnown`: the caller watches EndpointSlices, so no ready endpoint in `slices` means none
 * exists (yet): a Service that selects pods then waits instead of having its cluster IP dialled,
 * where nothing would answer (a new Service is usually seen before its first slice).
 */
export function pluginFromService(
  svc: ServiceObject,
  slices: readonly EndpointSliceObject[],
  nodeName: string | undefined,
  endpointsKnown = false,
): DiscoveredPlugin | ServiceProblem {
  const meta = svc.metadata ?? {};
  const annotations = meta.annotations ?? {};
  const service = serviceKey(meta);
  const type = meta.labels?.[PLUGIN_LABEL];
  if (type !== 'emitter' && type !== 'ingestor')
    return { problem: `label ${PLUGIN_LABEL} must be "emitter" or "ingestor", not ${JSON.stringify(type ?? '')}` };
  const name = annotations[NAME_ANNOTATION]?.trim() || meta.name || '';
  const bad = nameProblem(NAME_ANNOTATION, name);
  if (bad) return { problem: bad, kind: type };
  let emitterName: string | undefined;
  let sources: string[] | undefined;
  if (type === 'emitter' && annotations[EMITTER_NAME_ANNOTATION]?.trim()) {
    emitterName = annotations[EMITTER_NAME_ANNOTATION].trim();
    const wrong = nameProblem(EMITTER_NAME_ANNOTATION, emitterName);
    if (wrong) return { problem: wrong, kind: type };
  }
  if (type === 'ingestor' && annotations[SOURCES_ANNOTATION] !== undefined) {
    sources = annotations[SOURCES_ANNOTATION].split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const wrong = sourcesProblem(sources);
    if (wrong) return { problem: `${SOURCES_ANNOTATION}: ${wrong}`, kind: type };
  }
  const port = pickPort(svc, annotations[PORT_ANNOTATION]?.trim());
  if ('problem' in port) return { problem: port.problem, kind: type };
  const ready = readyEndpoints(slices, port.name ?? '');
  const local = nodeName ? ready.find((e) => e.nodeName === nodeName) : undefined;
  const base = { service, name, kind: type, ...(emitterName ? { emitterName } : {}), ...(sources ? { sources } : {}) } as const;
  if (local) return { ...base, address: hostPort(local.address, local.port), sameNode: true };
  const spec = svc.spec ?? {};
  if (spec.type === 'ExternalName' && spec.externalName)
    return { ...base, address: hostPort(spec.externalName, port.port), sameNode: false };
  if (endpointsKnown && ready.length === 0 && Object.keys(spec.selector ?? {}).length > 0) {
    return { problem: 'no ready endpoint yet: waiting for a ready pod of the Service', kind: type, waiting: true };
  }
  if (spec.clusterIP && spec.clusterIP !== 'None') return { ...base, address: hostPort(spec.clusterIP, port.port), sameNode: false };
  const any = ready[0];
  if (any) return { ...base, address: hostPort(any.address, any.port), sameNode: false };
  return { problem: 'headless Service without a ready endpoint', kind: type };
}

/** The Service port `polku.io/port` names (a number: the port, else the target port; or a name). */
function pickPort(svc: ServiceObject, wanted: string | undefined): { name?: string; port: number } | { problem: string } {
  const ports = svc.spec?.ports ?? [];
  if (wanted === undefined || wanted === '') {
    if (ports.length === 1) return ports[0]!;
    return { problem: `the Service has ${ports.length} ports: set ${PORT_ANNOTATION} to the plugin's port (number or name)` };
  }
  const found = /^\d+$/.test(wanted)
    ? (ports.find((p) => p.port === Number(wanted)) ?? ports.find((p) => p.targetPort === Number(wanted)))
    : ports.find((p) => p.name === wanted);
  return found ?? { problem: `${PORT_ANNOTATION}=${JSON.stringify(wanted)} is not a port of the Service` };
}

/** Ready, not terminating endpoints serving the Service port named `portName`, sorted by address. */
function readyEndpoints(
  slices: readonly EndpointSliceObject[],
  portName: string,
): Array<{ address: string; port: number; nodeName: string | undefined }> {
  const out: Array<{ address: string; port: number; nodeName: string | undefined }> = [];
  for (const slice of slices) {
    const port = (slice.ports ?? []).find((p) => (p.name ?? '') === portName)?.port;
    if (!port) continue;
    for (const e of slice.endpoints ?? []) {
      // An unset `ready` means ready (the API's own reading); terminating endpoints are leaving.
      if (e.conditions?.ready === false || e.conditions?.terminating === true || !e.addresses?.[0]) continue;
      out.push({ address: e.addresses[0], port, nodeName: e.nodeName ?? undefined });
    }
  }
  return out.sort((a, b) => a.address.localeCompare(b.address));
}

function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
