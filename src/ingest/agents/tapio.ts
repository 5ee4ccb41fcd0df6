import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { Event } from '../../gen/polku/v1/event.js';
import { ContainerData, EbpfType, type RawEbpfEvent } from '../../gen/tapio/v1/raw.js';
import {
  CONTAINER_ID,
  K8S_CLUSTER_NAME,
  K8S_CONTAINER_NAME,
  K8S_NAMESPACE_NAME,
  K8S_NODE_NAME,
  K8S_POD_NAME,
  PAYLOAD_FORMAT,
} from '../../metadata-keys.js';
import type { DecodeRefusal } from '../event-decoder.js';
import { freshString, repeatedString } from '../wire-strings.js';
import type { IngestContext } from '../ingestor.js';
import {
  LEN,
  badEnum,
  checkMessage,
  type MessageCheck,
  enumSegments,
  AgentBatchIngestor,
  timestampOf,
  type AgentFormat,
  type AgentIngestorOptions,
} from './agent-batch.js';

/** The batch's own fields (tapio.v1.EventBatch 2..4). */
interface TapioBatch {
  source: string;
  clusterId: string;
  nodeName: string;
}

const EVENT_TYPE = 'tapio.v1.RawEbpfEvent';
const PAYLOAD = `protobuf:${EVENT_TYPE}`;
const KINDS = enumSegments(EbpfType, 'EBPF_TYPE_');
// The keys, read once: per event they are plain constants (under tsx an imported binding is a
// getter call, 5 % of this ingestor's time in a profile).
const CLUSTER = K8S_CLUSTER_NAME;
const NODE = K8S_NODE_NAME;
const NAMESPACE = K8S_NAMESPACE_NAME;
const POD = K8S_POD_NAME;
const CONTAINER = CONTAINER_ID;
const CONTAINER_NAME = K8S_CONTAINER_NAME;
const FORMAT = PAYLOAD_FORMAT;

/**
 * What the ingestor reads of a `tapio.v1.RawEbpfEvent`: its envelope (the generated type's fields
 * but `data`, the timestamp as its two numbers), and of the typed data only a container's names
 * (metadata falls back on them).
 */
interface TapioEnvelope extends Omit<RawEbpfEvent, 'data' | 'timestamp'> {
  /** Whether field 2 (timestamp) was sent: absent, intake stamps the receive time. */
  hasTimestamp: boolean;
  seconds: bigint;
  nanos: number;
  container: ContainerData | undefined;
}

// The typed data is checked (framing, UTF-8 of every string) but not built: it stays in the
// payload, and building it was 40 % of this ingestor's time (11 strings, 6 bigints and an object
// for a network event). Fields: proto/tapio/v1/raw.proto; only the strings matter to the check.
const NETWORK: MessageCheck = {
  1: 'string',
  2: 'string',
  4: 'string',
  6: 'string',
  7: 'string',
  8: 'string',
  20: 'string',
  21: 'string',
  30: 'string',
};
const STORAGE: MessageCheck = { 1: 'string', 2: 'string', 3: 'string', 20: 'string' };
const MEMORY: MessageCheck = { 1: 'string', 30: 'string' };
const CPU: MessageCheck = { 30: 'string' };

/**
 * Decodes a RawEbpfEvent as the generated decoder does (same fields, last one wins, a field of
 * another wire type skipped, an end-group tag ends it), except that the typed data other than a
 * container's is checked rather than built, and the timestamp is read in place rather than as a
 * Timestamp object. Strings through src/ingest/wire-strings.ts: the id read fresh, the fields that
 * repeat from event to event (subtype, cluster, node, namespace, pod, container) interned, and
 * invalid UTF-8 refused by the strict reader as before.
 */
function decodeTapio(reader: BinaryReader, length: number): TapioEnvelope {
  const end = reader.pos + length;
  const m: TapioEnvelope = {
    id: '',
    hasTimestamp: false,
    seconds: 0n,
    nanos: 0,
    type: 0,
    subtype: '',
    clusterId: '',
    nodeName: '',
    namespace: '',
    podName: '',
    containerId: '',
    containerName: '',
    container: undefined,
  };
  while (reader.pos < end) {
    const tag = reader.uint32();
    switch (tag) {
      case 10:
        m.id = freshString(reader);
        continue;
      case 18:
        // A message field sent again replaces the earlier one (as the generated decoder does).
        m.hasTimestamp = true;
        m.seconds = 0n;
        m.nanos = 0;
        timestamp(reader, m);
        continue;
      case 24:
        m.type = reader.int32();
        continue;
      case 34:
        m.subtype = repeatedString(reader);
        continue;
      case 42:
        m.clusterId = repeatedString(reader);
        continue;
      case 50:
        m.nodeName = repeatedString(reader);
        continue;
      case 58:
        m.namespace = repeatedString(reader);
        continue;
      case 66:
        m.podName = repeatedString(reader);
        continue;
      case 74:
        m.containerId = repeatedString(reader);
        continue;
      case 82:
        m.containerName = repeatedString(reader);
        continue;
      case 162:
        m.container = undefined;
        checkMessage(reader, NETWORK);
        continue;
      case 170:
        m.container = ContainerData.decode(reader, reader.uint32());
        continue;
      case 178:
        m.container = undefined;
        checkMessage(reader, STORAGE);
        continue;
      case 186:
        m.container = undefined;
        checkMessage(reader, MEMORY);
        continue;
      case 194:
        m.container = undefined;
        checkMessage(reader, CPU);
        continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    reader.skip(tag & 7);
  }
  return m;
}

/**
 * google.protobuf.Timestamp {1 seconds, 2 nanos} at the reader (its length first) into `m`, as
 * the generated `Timestamp.decode` reads it (a field of another wire type skipped, an end-group
 * tag or tag 0 ends it).
 */
function timestamp(reader: BinaryReader, m: TapioEnvelope): void {
  const length = reader.uint32();
  const end = reader.pos + length;
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag === 8) m.seconds = reader.int64() as bigint;
    else if (tag === 16) m.nanos = reader.int32();
    else {
      if ((tag & 7) === 4 || tag === 0) break;
      reader.skip(tag & 7);
    }
  }
}

/**
 * `tapio.<type>[.<subtype>]` per type and subtype, made once: a subtype comes again event after
 * event (and, read through the string table, as the same string), so the lower-casing and
 * concatenation are not paid per event. Bounded: a type's map is emptied when it reaches
 * EVENT_TYPES_PER_KIND subtypes.
 */
const EVENT_TYPES_PER_KIND = 256;
const eventTypes: Array<Map<string, string>> = KINDS.map(() => new Map<string, string>());

function eventTypeOf(type: number, kind: string, subtype: string): string {
  if (subtype === '') return `tapio.${kind}`;
  const known = eventTypes[type]!;
  let name = known.get(subtype);
  if (name === undefined) {
    name = `tapio.${kind}.${subtype.toLowerCase()}`;
    if (known.size >= EVENT_TYPES_PER_KIND) known.clear();
    known.set(subtype, name);
  }
  return name;
}

const TAPIO: AgentFormat<TapioEnvelope, TapioBatch> = {
  agent: 'tapio',
  batchType: 'tapio.v1.EventBatch',
  eventType: EVENT_TYPE,
  eventFields: {
    1: 'id',
    2: 'timestamp',
    3: 'type',
    4: 'subtype',
    5: 'cluster_id',
    6: 'node_name',
    7: 'namespace',
    8: 'pod_name',
    9: 'container_id',
    10: 'container_name',
    20: 'network',
    21: 'container',
    22: 'storage',
    23: 'memory',
    24: 'cpu',
  },
  batchFields: { 2: ['source', LEN], 3: ['cluster_id', LEN], 4: ['node_name', LEN] },
  newBatch: () => ({ source: '', clusterId: '', nodeName: '' }),
  readBatchField(reader: BinaryReader, fieldNo: number, batch: TapioBatch): void {
    const value = repeatedString(reader);
    if (fieldNo === 2) batch.source = value;
    else if (fieldNo === 3) batch.clusterId = value;
    else batch.nodeName = value;
  },
  decode: decodeTapio,
  toEvent(m: TapioEnvelope, batch: TapioBatch, ctx: IngestContext, payload: Uint8Array): Event | DecodeRefusal {
    const kind = KINDS[m.type];
    if (kind === undefined) return badEnum(EVENT_TYPE, 'type', m.type, 'tapio.v1.EbpfType', m.id);
    const ts = m.hasTimestamp ? timestampOf(m.seconds, m.nanos, m.id) : 0n;
    if (typeof ts !== 'bigint') return ts;
    const metadata: { [key: string]: string } = { [FORMAT]: PAYLOAD };
    const cluster = m.clusterId || batch.clusterId;
    if (cluster !== '') metadata[CLUSTER] = cluster;
    const node = m.nodeName || batch.nodeName;
    if (node !== '') metadata[NODE] = node;
    if (m.namespace !== '') metadata[NAMESPACE] = m.namespace;
    if (m.podName !== '') metadata[POD] = m.podName;
    // A container event names its container in its data when the envelope does not.
    const data = m.container;
    const containerId = m.containerId || (data?.containerId ?? '');
    if (containerId !== '') metadata[CONTAINER] = containerId;
    const containerName = m.containerName || (data?.containerName ?? '');
    if (containerName !== '') metadata[CONTAINER_NAME] = containerName;
    return {
      id: m.id,
      timestampUnixNs: ts,
      source: ctx.source,
      eventType: eventTypeOf(m.type, kind, m.subtype),
      metadata,
      payload,
      routeTo: [],
      severity: 0,
      outcome: 0,
    };
  },
};

/**
 * TAPIO's batches (`tapio.v1.EventBatch` in `IngestBatch{source:"tapio", raw:{format:"protobuf"}}`):
 * each `tapio.v1.RawEbpfEvent` becomes one POLKU event, `tapio.<type>[.<subtype>]`
 * (`tapio.network.connection_reset`), its message kept as the payload. The mapping is the
 * README's "Agents" table; the walk and its refusals are agent-batch.ts's.
 */
export class TapioIngestor extends AgentBatchIngestor<TapioEnvelope, TapioBatch> {
  constructor(options: AgentIngestorOptions = {}) {
    super(TAPIO, 'tapio', options);
  }
}
