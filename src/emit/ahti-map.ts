import {
  EntityType,
  EventType,
  type AhtiEvent,
  type ContainerEventData,
  type Entity,
  type K8sEventData,
  type NetworkEventData,
} from '../gen/ahti/v1/events.js';
import type { Event } from '../gen/polku/v1/event.js';
import { K8sEvent } from '../gen/polku/v1/gateway.js';
import { RawK8sEvent, Resource, Action } from '../gen/portti/v1/raw.js';
import { RawEbpfEvent, type ContainerData, type NetworkData } from '../gen/tapio/v1/raw.js';
import {
  K8S_CLUSTER_NAME,
  K8S_NAMESPACE_NAME,
  K8S_OBJECT_LABEL_PREFIX,
  K8S_POD_LABEL_PREFIX,
  K8S_POD_NAME,
  K8S_POD_UID,
  PAYLOAD_FORMAT,
  SPAN_ID,
  TRACE_ID,
} from '../metadata-keys.js';

/**
 * Event → ahti.v1.AhtiEvent. The README's "AHTI out" section has this as a table.
 *
 * `event_type` is read as `<agent>.<kind>.<subtype>` (the agents' ingestors write it so):
 * `<agent>.<kind>` picks the AHTI EventType from {@link EVENT_TYPES}, the rest is the subtype.
 * An event_type not in the table keeps EVENT_TYPE_UNSPECIFIED and goes whole into `subtype`.
 */
export const EVENT_TYPES: ReadonlyMap<string, EventType> = new Map([
  ['tapio.network', EventType.EVENT_TYPE_NETWORK],
  ['tapio.container', EventType.EVENT_TYPE_CONTAINER],
  ['tapio.kernel', EventType.EVENT_TYPE_KERNEL],
  ['tapio.storage', EventType.EVENT_TYPE_VOLUME],
  ['tapio.memory', EventType.EVENT_TYPE_RESOURCE],
  ['tapio.cpu', EventType.EVENT_TYPE_RESOURCE],
  ['portti.deployment', EventType.EVENT_TYPE_DEPLOYMENT],
  ['portti.replicaset', EventType.EVENT_TYPE_DEPLOYMENT],
  ['portti.statefulset', EventType.EVENT_TYPE_DEPLOYMENT],
  ['portti.daemonset', EventType.EVENT_TYPE_DEPLOYMENT],
  ['portti.pod', EventType.EVENT_TYPE_POD],
  ['portti.service', EventType.EVENT_TYPE_SERVICE],
  ['portti.endpoints', EventType.EVENT_TYPE_SERVICE],
  ['portti.ingress', EventType.EVENT_TYPE_SERVICE],
  ['portti.configmap', EventType.EVENT_TYPE_CONFIG],
  ['portti.secret', EventType.EVENT_TYPE_CONFIG],
  ['portti.pvc', EventType.EVENT_TYPE_VOLUME],
  ['portti.pv', EventType.EVENT_TYPE_VOLUME],
  ['portti.node', EventType.EVENT_TYPE_CLUSTER],
  ['portti.event', EventType.EVENT_TYPE_HEALTH],
]);

const TAPIO_FORMAT = 'protobuf:tapio.v1.RawEbpfEvent';
const PORTTI_FORMAT = 'protobuf:portti.v1.RawK8sEvent';
const POLKU_K8S_FORMAT = 'protobuf:polku.v1.K8sEvent';

/** Maps one event. Typed data comes from the payload when its format is one POLKU knows; a payload that does not decode leaves `data` empty. */
export function toAhtiEvent(e: Event): AhtiEvent {
  const md = e.metadata;
  const { type, subtype } = typeOf(e.eventType);
  const ns = e.timestampUnixNs > 0n ? e.timestampUnixNs : 0n;
  return {
    id: e.id,
    timestamp: { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) },
    type,
    subtype,
    severity: e.severity as number,
    outcome: e.outcome as number,
    source: e.source,
    traceId: md[TRACE_ID] ?? '',
    spanId: md[SPAN_ID] ?? '',
    parentSpanId: '',
    durationUs: 0n,
    entities: podEntity(md),
    relationships: [],
    cluster: md[K8S_CLUSTER_NAME] ?? '',
    namespace: md[K8S_NAMESPACE_NAME] ?? '',
    labels: labels(md),
    error: undefined,
    data: dataOf(e),
  };
}

function typeOf(eventType: string): { type: EventType; subtype: string } {
  const first = eventType.indexOf('.');
  const second = first < 0 ? -1 : eventType.indexOf('.', first + 1);
  const kind = second < 0 ? eventType : eventType.slice(0, second);
  const type = EVENT_TYPES.get(kind);
  if (type === undefined) return { type: EventType.EVENT_TYPE_UNSPECIFIED, subtype: eventType };
  return { type, subtype: second < 0 ? '' : eventType.slice(second + 1) };
}

/** `k8s.pod.labels.*`, else (a PORTTI event about an object) `k8s.object.labels.*`, prefix removed. */
function labels(md: Record<string, string>): Record<string, string> {
  const pod: Record<string, string> = {};
  const object: Record<string, string> = {};
  let anyPod = false;
  for (const k in md) {
    if (k.startsWith(K8S_POD_LABEL_PREFIX)) {
      pod[k.slice(K8S_POD_LABEL_PREFIX.length)] = md[k]!;
      anyPod = true;
    } else if (k.startsWith(K8S_OBJECT_LABEL_PREFIX)) object[k.slice(K8S_OBJECT_LABEL_PREFIX.length)] = md[k]!;
  }
  return anyPod ? pod : object;
}

/** The pod the event happened in, when the metadata names one. */
function podEntity(md: Record<string, string>): Entity[] {
  const name = md[K8S_POD_NAME];
  if (name === undefined || name === '') return [];
  const namespace = md[K8S_NAMESPACE_NAME] ?? '';
  return [
    {
      type: EntityType.ENTITY_TYPE_POD,
      id: md[K8S_POD_UID] || (namespace ? `${namespace}/${name}` : name),
      name,
      clusterId: md[K8S_CLUSTER_NAME] ?? '',
      namespace,
      labels: {},
      attributes: {},
      generation: 0n,
      state: 0,
      deletedAt: undefined,
      deleteReason: '',
    },
  ];
}

function dataOf(e: Event): AhtiEvent['data'] {
  const format = e.metadata[PAYLOAD_FORMAT];
  if (format === undefined || e.payload.length === 0) return undefined;
  try {
    if (format === TAPIO_FORMAT) {
      const raw = RawEbpfEvent.decode(e.payload);
      if (raw.data?.$case === 'network') return { $case: 'network', value: network(raw, raw.data.value) };
      if (raw.data?.$case === 'container') return { $case: 'container', value: container(raw.data.value) };
      return undefined;
    }
    if (format === PORTTI_FORMAT) {
      const raw = RawK8sEvent.decode(e.payload);
      return { $case: 'k8s', value: k8s(enumWord(Resource[raw.resource], 'RESOURCE_'), enumWord(Action[raw.action], 'ACTION_'), raw) };
    }
    if (format === POLKU_K8S_FORMAT) {
      const raw = K8sEvent.decode(e.payload);
      return { $case: 'k8s', value: k8s(enumWord(raw.resource, 'RESOURCE_'), enumWord(raw.action, 'ACTION_'), raw) };
    }
  } catch {
    return undefined; // not what its format says: the event goes without typed data
  }
  return undefined;
}

function network(raw: RawEbpfEvent, n: NetworkData): NetworkEventData {
  return {
    protocol: n.protocol,
    srcIp: n.srcIp,
    dstIp: n.dstIp,
    srcPort: n.srcPort,
    dstPort: n.dstPort,
    direction: '',
    dnsQuery: n.dnsQuery,
    dnsResponse: n.dnsAnswers.join(','),
    httpMethod: '',
    httpPath: '',
    httpStatusCode: 0,
    latencyMs: 0,
    bytesSent: n.bytesSent,
    bytesReceived: n.bytesRecv,
    rttBaselineMs: 0,
    rttCurrentMs: Number(n.rttUs) / 1000,
    rttDegradationPct: 0,
    retransmitCount: Number(n.retransmits),
    tcpState: '',
    processName: '',
    containerId: raw.containerId,
    podName: raw.podName !== '' ? raw.podName : n.srcPod,
  };
}

function container(c: ContainerData): ContainerEventData {
  return {
    containerId: c.containerId,
    containerName: c.containerName,
    image: c.image,
    state: c.state,
    exitCode: c.exitCode,
    restartCount: 0,
    startTime: undefined,
    cpuUsage: 0,
    memoryUsage: c.memoryUsage,
    memoryLimit: c.memoryLimit,
    diskUsage: 0n,
    signal: c.signal,
    cgroupPath: c.cgroupPath,
  };
}

/** `RESOURCE_DEPLOYMENT`, `Deployment`, `deployment` → `deployment`. */
function enumWord(value: string | undefined, prefix: string): string {
  const v = (value ?? '').toUpperCase();
  return (v.startsWith(prefix) ? v.slice(prefix.length) : v).toLowerCase();
}

/** K8sEventData; replicas from the object's JSON for workloads (spec.replicas, status.readyReplicas / updatedReplicas). */
function k8s(resource: string, action: string, raw: { namespace: string; name: string; object: Uint8Array }): K8sEventData {
  const out: K8sEventData = {
    resourceType: resource,
    resourceName: raw.name,
    namespace: raw.namespace,
    reason: action,
    message: '',
    replicas: 0,
    readyReplicas: 0,
    updatedReplicas: 0,
    rolloutStatus: '',
  };
  if (raw.object.length > 0 && (resource === 'deployment' || resource === 'statefulset' || resource === 'replicaset')) {
    try {
      const o = JSON.parse(Buffer.from(raw.object).toString('utf8')) as {
        spec?: { replicas?: unknown };
        status?: { readyReplicas?: unknown; updatedReplicas?: unknown };
      };
      out.replicas = int(o.spec?.replicas);
      out.readyReplicas = int(o.status?.readyReplicas);
      out.updatedReplicas = int(o.status?.updatedReplicas);
      if (out.replicas > 0)
        out.rolloutStatus = out.updatedReplicas >= out.replicas && out.readyReplicas >= out.replicas ? 'complete' : 'progressing';
    } catch {
      // not JSON: the counts stay 0
    }
  }
  return out;
}

function int(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) ? v : 0;
}
