import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { Event } from '../../gen/polku/v1/event.js';
import { Action, RawK8sEvent, Resource } from '../../gen/portti/v1/raw.js';
import {
  K8S_CLUSTER_NAME,
  K8S_NAMESPACE_NAME,
  K8S_OBJECT_ANNOTATION_PREFIX,
  K8S_OBJECT_GENERATION,
  K8S_OBJECT_KIND,
  K8S_OBJECT_LABEL_PREFIX,
  K8S_OBJECT_NAME,
  K8S_OBJECT_RESOURCE_VERSION,
  K8S_OBJECT_UID,
  K8S_POD_NAME,
  K8S_POD_UID,
  PAYLOAD_FORMAT,
} from '../../metadata-keys.js';
import type { DecodeRefusal } from '../event-decoder.js';
import type { IngestContext } from '../ingestor.js';
import {
  LEN,
  badEnum,
  enumSegments,
  AgentBatchIngestor,
  put,
  putAll,
  timestampNs,
  type AgentFormat,
  type AgentIngestorOptions,
} from './agent-batch.js';

/** The batch's own fields (portti.v1.EventBatch 2 and 3). */
interface PorttiBatch {
  source: string;
  clusterId: string;
}

const EVENT_TYPE = 'portti.v1.RawK8sEvent';
const PAYLOAD = `protobuf:${EVENT_TYPE}`;
const RESOURCES = enumSegments(Resource, 'RESOURCE_');
const ACTIONS = enumSegments(Action, 'ACTION_');

/**
 * The Kubernetes kind of each Resource value (`k8s.object.kind`), as the API server spells it.
 * Index = enum value; test/ingest/agents-portti.test.ts checks it covers every value.
 */
export const PORTTI_KINDS: readonly string[] = [
  '',
  'Deployment',
  'Pod',
  'Service',
  'ConfigMap',
  'Secret',
  'Node',
  'Event',
  'Endpoints',
  'ReplicaSet',
  'StatefulSet',
  'DaemonSet',
  'Job',
  'CronJob',
  'PersistentVolumeClaim',
  'PersistentVolume',
  'Ingress',
  'NetworkPolicy',
  'ServiceAccount',
  'Role',
  'RoleBinding',
  'ClusterRole',
  'ClusterRoleBinding',
  'Namespace',
  'HorizontalPodAutoscaler',
  'VerticalPodAutoscaler',
  'PodDisruptionBudget',
  'LimitRange',
  'ResourceQuota',
];

const PORTTI: AgentFormat<RawK8sEvent, PorttiBatch> = {
  agent: 'portti',
  batchType: 'portti.v1.EventBatch',
  eventType: EVENT_TYPE,
  eventFields: {
    1: 'id',
    2: 'timestamp',
    3: 'resource',
    4: 'action',
    5: 'namespace',
    6: 'name',
    7: 'uid',
    8: 'object',
    9: 'old_object',
    10: 'cluster_id',
    11: 'resource_version',
    12: 'generation',
    13: 'labels',
    14: 'annotations',
  },
  batchFields: { 2: ['source', LEN], 3: ['cluster_id', LEN] },
  newBatch: () => ({ source: '', clusterId: '' }),
  readBatchField(reader: BinaryReader, fieldNo: number, batch: PorttiBatch): void {
    if (fieldNo === 2) batch.source = reader.string();
    else batch.clusterId = reader.string();
  },
  decode: (reader, length) => RawK8sEvent.decode(reader, length),
  toEvent(m: RawK8sEvent, batch: PorttiBatch, ctx: IngestContext, payload: Uint8Array): Event | DecodeRefusal {
    const resource = RESOURCES[m.resource];
    if (resource === undefined) return badEnum(EVENT_TYPE, 'resource', m.resource, 'portti.v1.Resource', m.id);
    const action = ACTIONS[m.action];
    if (action === undefined) return badEnum(EVENT_TYPE, 'action', m.action, 'portti.v1.Action', m.id);
    const ts = timestampNs(m.timestamp, m.id);
    if (typeof ts !== 'bigint') return ts;
    const metadata: { [key: string]: string } = { [PAYLOAD_FORMAT]: PAYLOAD };
    put(metadata, K8S_CLUSTER_NAME, m.clusterId || batch.clusterId);
    put(metadata, K8S_NAMESPACE_NAME, m.namespace);
    put(metadata, K8S_OBJECT_KIND, PORTTI_KINDS[m.resource]!);
    put(metadata, K8S_OBJECT_NAME, m.name);
    put(metadata, K8S_OBJECT_UID, m.uid);
    put(metadata, K8S_OBJECT_RESOURCE_VERSION, m.resourceVersion);
    if (m.generation !== 0n) metadata[K8S_OBJECT_GENERATION] = m.generation.toString();
    if (m.resource === Resource.RESOURCE_POD) {
      // A pod is also placed as one, so the Kubernetes enricher and pod filters find it.
      put(metadata, K8S_POD_NAME, m.name);
      put(metadata, K8S_POD_UID, m.uid);
    }
    putAll(metadata, K8S_OBJECT_LABEL_PREFIX, m.labels);
    putAll(metadata, K8S_OBJECT_ANNOTATION_PREFIX, m.annotations);
    return {
      id: m.id,
      timestampUnixNs: ts,
      source: ctx.source,
      eventType: `portti.${resource}.${action}`,
      metadata,
      payload,
      routeTo: [],
      severity: 0,
      outcome: 0,
    };
  },
};

/**
 * PORTTI's batches (`portti.v1.EventBatch` in `IngestBatch{source:"portti", raw:{format:"protobuf"}}`):
 * each `portti.v1.RawK8sEvent` becomes one POLKU event, `portti.<resource>.<action>`
 * (`portti.deployment.update`), its message kept as the payload. The mapping is the README's
 * "Agents" table; the walk and its refusals are agent-batch.ts's.
 */
export class PorttiIngestor extends AgentBatchIngestor<RawK8sEvent, PorttiBatch> {
  constructor(options: AgentIngestorOptions = {}) {
    super(PORTTI, 'portti', options);
  }
}
