// v1 Pod objects as the API server stores them (with the noise a real pod carries: managedFields,
// annotations, a full spec), and an enricher wired to the in-process FakeApiServer on fake time.
import { Registry } from 'prom-client';
import { KubernetesEnricher, type KubernetesEnricherOptions } from '../../src/middleware/kubernetes-enricher.js';
import { createLogger } from '../../src/observability/logger.js';
import { FakeClock, FakeTimers } from '../../src/testing/index.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import type { FakeApiServer } from '../discovery/fake-apiserver.js';

export const BACKOFF = { initialMs: 100, maxMs: 800 };

export interface PodShape {
  node?: string;
  ip?: string;
  labels?: Record<string, string>;
  owner?: { kind: string; name: string };
  containers?: Array<{ name: string; id: string }>;
  hostNetwork?: boolean;
}

/** A v1 Pod; the API server fills in uid and resourceVersion. */
export function pod(namespace: string, name: string, p: PodShape = {}) {
  const containers = p.containers ?? [{ name: 'main', id: `containerd://${'ab'.repeat(32)}` }];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: p.labels ?? {},
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-12-01T10:00:00Z', 'prometheus.io/scrape': 'true' },
      creationTimestamp: '2026-12-01T10:00:00Z',
      ...(p.owner
        ? {
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: p.owner.kind,
                name: p.owner.name,
                uid: 'owner-uid',
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          }
        : {}),
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2026-12-01T10:00:00Z',
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:labels': Object.fromEntries(Object.keys(p.labels ?? {}).map((k) => [`f:${k}`, {}])) },
            'f:spec': { 'f:containers': {} },
          },
        },
      ],
    },
    spec: {
      nodeName: p.node ?? 'node-1',
      hostNetwork: p.hostNetwork ?? false,
      serviceAccountName: 'default',
      containers: containers.map((c) => ({
        name: c.name,
        image: `registry.example.com/${c.name}:1.2.3`,
        ports: [{ containerPort: 8080, protocol: 'TCP' }],
        env: [{ name: 'LOG_LEVEL', value: 'info' }],
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
        volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
      })),
      volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } }],
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
    },
    status: {
      phase: 'Running',
      hostIP: '10.0.0.1',
      ...(p.ip ? { podIP: p.ip, podIPs: [{ ip: p.ip }] } : {}),
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-12-01T10:00:05Z' }],
      containerStatuses: containers.map((c) => ({
        name: c.name,
        containerID: c.id,
        image: `registry.example.com/${c.name}:1.2.3`,
        imageID: `registry.example.com/${c.name}@sha256:${'cd'.repeat(32)}`,
        ready: true,
        restartCount: 0,
        started: true,
        state: { running: { startedAt: '2026-12-01T10:00:04Z' } },
      })),
    },
  };
}

export interface EnricherRig {
  enricher: KubernetesEnricher;
  registry: Registry;
  clock: FakeClock;
  timers: FakeTimers;
}

/** An initialised enricher watching `node-1` (unless told otherwise) of `api`, on fake time. */
export function startEnricher(api: FakeApiServer, options: KubernetesEnricherOptions = {}): EnricherRig {
  const clock = new FakeClock();
  const timers = new FakeTimers(clock);
  const registry = new Registry();
  const enricher = new KubernetesEnricher({ nodeName: 'node-1', cluster: api.cluster(), backoff: BACKOFF, ...options });
  enricher.init({ registry, logger: createLogger('silent'), clock, timers });
  return { enricher, registry, clock, timers };
}

/** One event with this metadata. */
export function event(metadata: Record<string, string>, id = 'e1'): Event {
  return Event.fromPartial({ id, eventType: 'tapio.network.connection_reset', metadata });
}

/** Runs one event through the enricher; returns its metadata afterwards. */
export function enrich(rig: EnricherRig, metadata: Record<string, string>): Record<string, string> {
  const [out] = rig.enricher.process([event(metadata)]);
  return out!.metadata;
}
