import type { BinaryReader } from '@bufbuild/protobuf/wire';
import { ChangeType, CloudProvider, RawCloudEvent } from '../../gen/elava/v1/raw.js';
import type { Event } from '../../gen/polku/v1/event.js';
import {
  CLOUD_ACCOUNT_ID,
  CLOUD_AVAILABILITY_ZONE,
  CLOUD_PROVIDER,
  CLOUD_REGION,
  CLOUD_RESOURCE_ID,
  CLOUD_RESOURCE_NAME,
  CLOUD_RESOURCE_TAG_PREFIX,
  CLOUD_RESOURCE_TYPE,
  PAYLOAD_FORMAT,
} from '../../metadata-keys.js';
import type { DecodeRefusal } from '../event-decoder.js';
import type { IngestContext } from '../ingestor.js';
import {
  LEN,
  VARINT,
  badEnum,
  enumSegments,
  AgentBatchIngestor,
  put,
  putAll,
  timestampNs,
  type AgentFormat,
  type AgentIngestorOptions,
} from './agent-batch.js';

/** The batch's own fields (elava.v1.EventBatch 2..4). */
interface ElavaBatch {
  source: string;
  provider: CloudProvider;
  accountId: string;
}

const EVENT_TYPE = 'elava.v1.RawCloudEvent';
const PAYLOAD = `protobuf:${EVENT_TYPE}`;
const PROVIDERS = enumSegments(CloudProvider, 'CLOUD_PROVIDER_');
const CHANGES = enumSegments(ChangeType, 'CHANGE_TYPE_');

/** The `resource` oneof cases of AwsData, GcpData and AzureData, as the proto names them. */
const RESOURCE_NAMES: Readonly<Record<string, string>> = {
  ec2Instance: 'ec2_instance',
  rdsInstance: 'rds_instance',
  s3Bucket: 's3_bucket',
  lambdaFunction: 'lambda_function',
  ecsService: 'ecs_service',
  eksCluster: 'eks_cluster',
  elb: 'elb',
  gceInstance: 'gce_instance',
  gkeCluster: 'gke_cluster',
  cloudSql: 'cloud_sql',
  gcs: 'gcs',
  cloudFunction: 'cloud_function',
  cloudRun: 'cloud_run',
  vm: 'vm',
  aksCluster: 'aks_cluster',
  azureSql: 'azure_sql',
  storageAccount: 'storage_account',
  azureFunction: 'azure_function',
};

const ELAVA: AgentFormat<RawCloudEvent, ElavaBatch> = {
  agent: 'elava',
  batchType: 'elava.v1.EventBatch',
  eventType: EVENT_TYPE,
  eventFields: {
    1: 'id',
    2: 'timestamp',
    3: 'provider',
    4: 'resource_type',
    5: 'region',
    6: 'account_id',
    7: 'resource_id',
    8: 'resource_name',
    9: 'tags',
    10: 'change_type',
    11: 'previous_state',
    12: 'current_state',
    20: 'aws',
    21: 'gcp',
    22: 'azure',
  },
  batchFields: { 2: ['source', LEN], 3: ['provider', VARINT], 4: ['account_id', LEN] },
  newBatch: () => ({ source: '', provider: CloudProvider.CLOUD_PROVIDER_UNSPECIFIED, accountId: '' }),
  readBatchField(reader: BinaryReader, fieldNo: number, batch: ElavaBatch): void {
    if (fieldNo === 3) {
      const provider = reader.int32();
      if (PROVIDERS[provider] === undefined) throw new Error(`field 3 (provider) ${provider} is not an elava.v1.CloudProvider value`);
      batch.provider = provider;
    } else if (fieldNo === 2) batch.source = reader.string();
    else batch.accountId = reader.string();
  },
  decode: (reader, length) => RawCloudEvent.decode(reader, length),
  toEvent(m: RawCloudEvent, batch: ElavaBatch, ctx: IngestContext, payload: Uint8Array): Event | DecodeRefusal {
    if (PROVIDERS[m.provider] === undefined) return badEnum(EVENT_TYPE, 'provider', m.provider, 'elava.v1.CloudProvider', m.id);
    const change = CHANGES[m.changeType];
    if (change === undefined) return badEnum(EVENT_TYPE, 'change_type', m.changeType, 'elava.v1.ChangeType', m.id);
    const ts = timestampNs(m.timestamp, m.id);
    if (typeof ts !== 'bigint') return ts;
    const provider = PROVIDERS[m.provider === CloudProvider.CLOUD_PROVIDER_UNSPECIFIED ? batch.provider : m.provider]!;
    const data = m.data?.value;
    const oneof = data?.resource?.$case;
    const resource = oneof !== undefined ? RESOURCE_NAMES[oneof]! : m.resourceType.toLowerCase() || 'unspecified';
    const metadata: { [key: string]: string } = { [PAYLOAD_FORMAT]: PAYLOAD };
    if (provider !== 'unspecified') metadata[CLOUD_PROVIDER] = provider;
    put(metadata, CLOUD_REGION, m.region);
    put(metadata, CLOUD_ACCOUNT_ID, m.accountId || batch.accountId);
    put(metadata, CLOUD_RESOURCE_ID, m.resourceId);
    put(metadata, CLOUD_RESOURCE_NAME, m.resourceName);
    put(metadata, CLOUD_RESOURCE_TYPE, m.resourceType);
    if (m.data?.$case === 'aws') put(metadata, CLOUD_AVAILABILITY_ZONE, m.data.value.availabilityZone);
    else if (m.data?.$case === 'gcp') put(metadata, CLOUD_AVAILABILITY_ZONE, m.data.value.zone);
    putAll(metadata, CLOUD_RESOURCE_TAG_PREFIX, m.tags);
    return {
      id: m.id,
      timestampUnixNs: ts,
      source: ctx.source,
      eventType: `elava.${provider}.${resource}.${change}`,
      metadata,
      payload,
      routeTo: [],
      severity: 0,
      outcome: 0,
    };
  },
};

/**
 * ELAVA's batches (`elava.v1.EventBatch` in `IngestBatch{source:"elava", raw:{format:"protobuf"}}`):
 * each `elava.v1.RawCloudEvent` becomes one POLKU event, `elava.<provider>.<resource>.<change>`
 * (`elava.aws.s3_bucket.created`), its message kept as the payload. The mapping is the README's
 * "Agents" table; the walk and its refusals are agent-batch.ts's.
 */
export class ElavaIngestor extends AgentBatchIngestor<RawCloudEvent, ElavaBatch> {
  constructor(options: AgentIngestorOptions = {}) {
    super(ELAVA, 'elava', options);
  }
}
