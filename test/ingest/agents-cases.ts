import { ChangeType, CloudProvider, EventBatch as ElavaBatch, RawCloudEvent } from '../../src/gen/elava/v1/raw.js';
import { EbpfType, EventBatch, RawEbpfEvent } from '../../src/gen/tapio/v1/raw.js';
import { BIG_TS } from './agents-support.js';

/**
 * Agent events of every typed-data case and what each becomes, shared by the ingestor tests and
 * the end-to-end test (test/ingest/agents-e2e.test.ts).
 */

/** One event of every typed-data case, and one without data. */
export const TAPIO_CASES: RawEbpfEvent[] = [
  RawEbpfEvent.fromPartial({
    id: 't-net',
    timestamp: BIG_TS,
    type: EbpfType.EBPF_TYPE_NETWORK,
    subtype: 'connection_reset',
    clusterId: 'prod-eu',
    nodeName: 'node-1',
    namespace: 'shop',
    podName: 'cart-7d9f',
    containerId: 'containerd://abc',
    containerName: 'cart',
    data: {
      $case: 'network',
      value: {
        protocol: 'tcp',
        srcIp: '10.0.0.1',
        srcPort: 43210,
        dstIp: '10.0.0.2',
        dstPort: 443,
        bytesSent: 18_446_744_073_709_551_615n,
        rttUs: 1200n,
        dnsAnswers: ['a', 'b'],
        errorCode: 'ECONNRESET',
      },
    },
  }),
  RawEbpfEvent.fromPartial({
    id: 't-oom',
    type: EbpfType.EBPF_TYPE_CONTAINER,
    subtype: 'OOM_Kill',
    data: { $case: 'container', value: { containerId: 'cid-2', containerName: 'worker', exitCode: -9, signal: 9, oomScore: 999n } },
  }),
  RawEbpfEvent.fromPartial({
    id: 't-io',
    type: EbpfType.EBPF_TYPE_STORAGE,
    subtype: 'slow_io',
    data: { $case: 'storage', value: { device: 'nvme0n1', latencyUs: 90_000n, queueDepth: 64 } },
  }),
  RawEbpfEvent.fromPartial({
    id: 't-mem',
    type: EbpfType.EBPF_TYPE_MEMORY,
    data: { $case: 'memory', value: { pressureLevel: 'critical', usageBytes: 1n << 40n } },
  }),
  RawEbpfEvent.fromPartial({
    id: 't-cpu',
    type: EbpfType.EBPF_TYPE_CPU,
    subtype: 'throttled',
    data: { $case: 'cpu', value: { throttledUs: 5n, cgroupPath: '/kubepods/x' } },
  }),
  RawEbpfEvent.fromPartial({ id: 't-none', type: EbpfType.EBPF_TYPE_UNSPECIFIED }),
];

/** What each of {@link TAPIO_CASES} becomes: event_type and metadata (batch cluster c-batch, node n-batch). */
export const TAPIO_EXPECTED: { eventType: string; metadata: Record<string, string> }[] = [
  {
    eventType: 'tapio.network.connection_reset',
    metadata: {
      'polku.payload.format': 'protobuf:tapio.v1.RawEbpfEvent',
      'k8s.cluster.name': 'prod-eu',
      'k8s.node.name': 'node-1',
      'k8s.namespace.name': 'shop',
      'k8s.pod.name': 'cart-7d9f',
      'container.id': 'containerd://abc',
      'k8s.container.name': 'cart',
    },
  },
  {
    eventType: 'tapio.container.oom_kill',
    metadata: {
      'polku.payload.format': 'protobuf:tapio.v1.RawEbpfEvent',
      'k8s.cluster.name': 'c-batch',
      'k8s.node.name': 'n-batch',
      'container.id': 'cid-2',
      'k8s.container.name': 'worker',
    },
  },
  ...['tapio.storage.slow_io', 'tapio.memory', 'tapio.cpu.throttled', 'tapio.unspecified'].map((eventType) => ({
    eventType,
    metadata: {
      'polku.payload.format': 'protobuf:tapio.v1.RawEbpfEvent',
      'k8s.cluster.name': 'c-batch',
      'k8s.node.name': 'n-batch',
    },
  })),
];

export const tapioBatch = (events: RawEbpfEvent[]) =>
  EventBatch.encode({ events, source: 'tapio', clusterId: 'c-batch', nodeName: 'n-batch' }).finish();

/** Each `resource` oneof case of ELAVA's provider data, with one field set so its message is not empty. */
const AWS = {
  ec2Instance: { instanceId: 'i-1', securityGroups: ['sg-1', 'sg-2'] },
  rdsInstance: { dbInstanceId: 'db-1', port: 5432, multiAz: true },
  s3Bucket: { bucketName: 'logs', versioningEnabled: true },
  lambdaFunction: { functionName: 'fn', memoryMb: 128 },
  ecsService: { serviceName: 'svc', desiredCount: 3 },
  eksCluster: { clusterName: 'eks', subnetIds: ['s-1'] },
  elb: { loadBalancerName: 'lb', availabilityZones: ['eu-north-1a'] },
} as const;
const GCP = {
  gceInstance: { instanceId: 'gce-1', networkTags: ['web'] },
  gkeCluster: { clusterName: 'gke', nodeCount: 3 },
  cloudSql: { instanceName: 'sql', highAvailability: true },
  gcs: { bucketName: 'b', uniformBucketAccess: true },
  cloudFunction: { functionName: 'f', timeoutSeconds: 60 },
  cloudRun: { serviceName: 'run', trafficPercent: 100 },
} as const;
const AZURE = {
  vm: { vmName: 'vm-1', powerState: 'running' },
  aksCluster: { clusterName: 'aks', agentPoolCount: 2 },
  azureSql: { serverName: 'srv', databaseName: 'db' },
  storageAccount: { accountName: 'acct', httpsOnly: true },
  azureFunction: { functionAppName: 'app', state: 'Running' },
} as const;

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Every aws/gcp/azure oneof case (each change type in turn), one with only resource_type, and one with nothing. */
export const ELAVA_CASES: RawCloudEvent[] = [];
export const ELAVA_EXPECTED: { eventType: string; metadata: Record<string, string> }[] = [];
{
  const changes = ['unspecified', 'created', 'updated', 'deleted', 'snapshot'];
  let n = 0;
  const add = (provider: 'aws' | 'gcp' | 'azure', providerValue: number, resource: string, value: object, extra: object) => {
    const changeType = n % changes.length;
    ELAVA_CASES.push(
      RawCloudEvent.fromPartial({
        id: `e-${n}`,
        timestamp: n === 0 ? BIG_TS : { seconds: BigInt(1_700_000_000 + n), nanos: n },
        provider: providerValue,
        region: 'eu-north-1',
        resourceId: `rid-${n}`,
        resourceName: `name-${n}`,
        tags: { team: 'core', empty: '' },
        changeType,
        data: { $case: provider, value: { ...extra, resource: { $case: resource, value } } } as RawCloudEvent['data'],
      }),
    );
    const metadata: Record<string, string> = {
      'polku.payload.format': 'protobuf:elava.v1.RawCloudEvent',
      'cloud.provider': provider,
      'cloud.region': 'eu-north-1',
      'cloud.account.id': 'acct-batch',
      'cloud.resource_id': `rid-${n}`,
      'polku.cloud.resource_name': `name-${n}`,
      'polku.cloud.tags.team': 'core',
      'polku.cloud.tags.empty': '',
    };
    if (provider !== 'azure') metadata['cloud.availability_zone'] = 'zone-a';
    ELAVA_EXPECTED.push({ eventType: `elava.${provider}.${snake(resource)}.${changes[changeType]}`, metadata });
    n++;
  };
  for (const [resource, value] of Object.entries(AWS))
    add('aws', CloudProvider.CLOUD_PROVIDER_AWS, resource, value, { arn: 'arn:x', availabilityZone: 'zone-a' });
  for (const [resource, value] of Object.entries(GCP))
    add('gcp', CloudProvider.CLOUD_PROVIDER_GCP, resource, value, { projectId: 'p', zone: 'zone-a' });
  for (const [resource, value] of Object.entries(AZURE))
    add('azure', CloudProvider.CLOUD_PROVIDER_AZURE, resource, value, { subscriptionId: 'sub' });
  // No oneof: resource_type names the resource; the batch's provider stands in for an unspecified one.
  ELAVA_CASES.push(
    RawCloudEvent.fromPartial({
      id: 'e-type',
      resourceType: 'IAM_Role',
      accountId: 'acct-own',
      changeType: ChangeType.CHANGE_TYPE_DELETED,
    }),
  );
  ELAVA_EXPECTED.push({
    eventType: 'elava.aws.iam_role.deleted',
    metadata: {
      'polku.payload.format': 'protobuf:elava.v1.RawCloudEvent',
      'cloud.provider': 'aws',
      'cloud.account.id': 'acct-own',
      'polku.cloud.resource_type': 'IAM_Role',
    },
  });
  ELAVA_CASES.push(RawCloudEvent.fromPartial({ id: 'e-none' }));
  ELAVA_EXPECTED.push({
    eventType: 'elava.aws.unspecified.unspecified',
    metadata: { 'polku.payload.format': 'protobuf:elava.v1.RawCloudEvent', 'cloud.provider': 'aws', 'cloud.account.id': 'acct-batch' },
  });
}

export const elavaBatch = (events: RawCloudEvent[]) =>
  ElavaBatch.encode({ events, source: 'elava', provider: CloudProvider.CLOUD_PROVIDER_AWS, accountId: 'acct-batch' }).finish();
