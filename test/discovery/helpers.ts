// A gateway whose plugin table is fed by KubernetesDiscovery — its
// list/watch informers (src/discovery/kube/), pointed at the in-process FakeApiServer — plus builders for Service and
// EndpointSlice objects as the API server stores them.
import { kubernetesDiscovery, type KubernetesDiscovery, type KubernetesDiscoveryOptions } from '../../src/discovery/index.js';
import type { PluginRegistryOptions } from '../../src/registry/plugin-registry.js';
import { startTestGateway, type TestGateway } from '../registry/helpers.js';
import type { FakeApiServer } from './fake-apiserver.js';

export const BACKOFF = { initialMs: 100, maxMs: 800 };

export interface DiscoveryGateway extends TestGateway {
  discovery: KubernetesDiscovery;
}

/** Starts a gateway with discovery against `api` (fake time drives backoff and Health sweeps). */
export async function startDiscoveryGateway(
  api: FakeApiServer,
  options: Partial<Pick<KubernetesDiscoveryOptions, 'namespaces' | 'nodeName' | 'endpointSlices' | 'labelSelector'>> = {},
  table: Partial<Omit<PluginRegistryOptions, 'pipeline' | 'logger' | 'registry'>> = {},
): Promise<DiscoveryGateway> {
  let discovery: KubernetesDiscovery | undefined;
  const gw = await startTestGateway({ healthIntervalMs: 3_600_000, ...table }, undefined, async (plugins, env) => {
    discovery = await kubernetesDiscovery({
      plugins,
      cluster: api.cluster(),
      logger: env.logger,
      registry: env.registry,
      timers: env.timers,
      backoff: BACKOFF,
      ...options,
    });
    plugins.addSource(discovery);
  });
  return Object.assign(gw, { discovery: discovery! });
}

/** /readyz: status and reason. */
export async function readyz(gw: TestGateway): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${gw.metricsPort}/readyz`);
  return { status: res.status, body: (await res.text()).trim() };
}

export interface ServiceShape {
  type?: 'emitter' | 'ingestor';
  /** The Service port (and, without endpoints, what is dialled at the cluster IP). */
  port: number;
  portName?: string;
  clusterIP?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  /** Pods the Service selects (its endpoints then come from the EndpointSlice controller). */
  selector?: Record<string, string>;
}

/** A v1 Service labelled as a plugin (unless `labels` says otherwise). */
export function service(namespace: string, name: string, s: ServiceShape) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: s.labels ?? { 'polku.io/plugin': s.type ?? 'emitter' }, annotations: s.annotations ?? {} },
    spec: {
      type: 'ClusterIP',
      clusterIP: s.clusterIP ?? '127.0.0.1',
      ...(s.selector ? { selector: s.selector } : {}),
      ports: [{ name: s.portName ?? 'grpc', port: s.port, targetPort: s.portName ?? 'grpc', protocol: 'TCP' }],
    },
  };
}

/** A discovery.k8s.io/v1 EndpointSlice of `serviceName`, labelled as the controller does (Service labels copied). */
export function endpointSlice(
  namespace: string,
  serviceName: string,
  port: { name: string; port: number },
  endpoints: Array<{ ip: string; node: string; ready?: boolean }>,
  type: 'emitter' | 'ingestor' = 'emitter',
) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${serviceName}-abcde`, namespace, labels: { 'kubernetes.io/service-name': serviceName, 'polku.io/plugin': type } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      nodeName: e.node,
      conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
    })),
    ports: [{ name: port.name, port: port.port, protocol: 'TCP' }],
  };
}
