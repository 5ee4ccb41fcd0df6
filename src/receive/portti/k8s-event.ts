import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { Event } from '../../gen/polku/v1/event.js';
import { type DecodeRefusal, isInvalidUtf8, isRefusal, refusedEvent, strictReader } from '../../ingest/event-decoder.js';
import { DEFAULT_LIMITS, type IntakeLimits } from '../../ingest/intake-rules.js';
import { Resource } from '../../gen/portti/v1/raw.js';
import { enumSegments } from '../../ingest/agents/agent-batch.js';
import { PORTTI_KINDS } from '../../ingest/agents/portti.js';
import {
  K8S_CLUSTER_NAME,
  K8S_NAMESPACE_NAME,
  K8S_OBJECT_KIND,
  K8S_OBJECT_NAME,
  K8S_POD_NAME,
  PAYLOAD_FORMAT,
} from '../../metadata-keys.js';
import { fieldEnd, skipUnknown, UnreadableMessage } from '../message-framing.js';

/** The source every event PORTTI sends is stamped with, over either of its services. */
export const PORTTI_SOURCE = 'portti';

/** `polku.payload.format` of an event made from a polku.v1.K8sEvent: its payload is that message as sent. */
export const K8S_EVENT_PAYLOAD_FORMAT = 'protobuf:polku.v1.K8sEvent';

/** The portti ingestor's resource words (`deployment`, `pvc`, …), index = portti.v1.Resource value. */
const RESOURCE_WORDS = enumSegments(Resource, 'RESOURCE_');

/**
 * A resource as PORTTI's older client may spell it, lower-cased, to the portti ingestor's word:
 * the word itself (`pvc`) and the Kubernetes kind (`persistentvolumeclaim`) both give `pvc`.
 */
const WORD_OF: ReadonlyMap<string, string> = new Map([
  ...RESOURCE_WORDS.map((word) => [word, word] as const),
  ...RESOURCE_WORDS.map((word, value) => [PORTTI_KINDS[value]!.toLowerCase(), word] as const).filter(([kind]) => kind !== ''),
]);

/** The Kubernetes kind of each of those words (`pvc` → `PersistentVolumeClaim`), for `k8s.object.kind`. */
const KIND_OF: ReadonlyMap<string, string> = new Map(RESOURCE_WORDS.map((word, value) => [word, PORTTI_KINDS[value]!]));

/**
 * One word of an event type from PORTTI's resource or action, however the client spelt it, the
 * same word the portti ingestor writes for the enum value: lower-cased, the enum name's prefix
 * dropped (`RESOURCE_DEPLOYMENT`, `ACTION_UPDATE`), a Kubernetes kind turned into the enum's word
 * (`PersistentVolumeClaim` → `pvc`, `HorizontalPodAutoscaler` → `hpa`), and any character other
 * than a-z, 0-9 and `_` made `_` (so a resource never adds a level to the event type). Empty
 * becomes `unspecified`, as the enum's zero value reads.
 *
 * `Deployment`, `deployment`, `RESOURCE_DEPLOYMENT` → `deployment`; `UPDATE`, `ACTION_UPDATE` → `update`.
 */
export function porttiWord(value: string, enumPrefix: 'RESOURCE_' | 'ACTION_'): string {
  let word = value.toLowerCase();
  const prefix = enumPrefix.toLowerCase();
  if (word.startsWith(prefix)) word = word.slice(prefix.length);
  if (word === '') return 'unspecified';
  if (enumPrefix === 'RESOURCE_') {
    const known = WORD_OF.get(word);
    if (known !== undefined) return known;
  }
  return /^[a-z0-9_]+$/.test(word) ? word : word.replace(/[^a-z0-9_]/g, '_');
}

/** `portti.<resource>.<action>`, the event type of a PORTTI event (see {@link porttiWord}). */
export function porttiEventType(resource: string, action: string): string {
  return `portti.${porttiWord(resource, 'RESOURCE_')}.${porttiWord(action, 'ACTION_')}`;
}

/** The reader's bound, narrowed to an event while it is read. */
type Bounded = { len: number };

/** Where a singular length-delimited field's length prefix is; NONE when it never came. */
const NONE = -1;

const K8S_EVENT_FIELDS = ['', 'id', '', 'resource', 'action', 'namespace', 'name', '', '', 'cluster_id'] as const;

/**
 * Decodes one polku.v1.K8sEvent of `length` bytes at the position of `reader` (a strict reader over
 * `bytes`) into a POLKU event:
 *
 * - id kept; `timestamp_unix_nano` kept exactly (int64, as a bigint);
 * - event_type `portti.<resource>.<action>` ({@link porttiEventType}); source `portti`;
 * - metadata as the portti ingestor writes it: `k8s.object.kind` (the Kubernetes kind when the
 *   resource is one of portti.v1.Resource's, e.g. `Deployment`; else the resource as sent),
 *   `k8s.object.name`, `k8s.namespace.name`, `k8s.cluster.name` (the event's `cluster_id`, else
 *   `batchCluster`), and for a pod `k8s.pod.name`, each only when not empty; and
 *   `polku.payload.format` = `protobuf:polku.v1.K8sEvent`;
 * - payload: the K8sEvent's bytes exactly as received (a view, not a copy), so `object`,
 *   `old_object` and any field a newer PORTTI adds are all kept.
 *
 * Strict: a string that is not UTF-8 refuses the event INVALID_EVENT naming the field (and its id
 * when that was readable); bytes that are not protobuf inside the event's own length refuse it
 * INVALID_EVENT. The reader is left at the event's end either way.
 */
export function decodeK8sEvent(reader: BinaryReader, bytes: Uint8Array, length: number, batchCluster: string): Event | DecodeRefusal {
  const start = reader.pos;
  const end = start + length;
  if (end > reader.len) throw new RangeError(`a K8sEvent of ${length} bytes runs past the end of what holds it`);
  const bounded = reader as unknown as Bounded;
  const outerLen = bounded.len;
  bounded.len = end;
  // Fields 1, 3, 4, 5, 6, 9: where each is (the last of each as sent, protobuf's rule).
  const at = [NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE];
  let timestamp = 0n;
  let field = 'K8sEvent';
  try {
    while (reader.pos < end) {
      const tag = reader.uint32();
      const number = tag >>> 3;
      if ((tag & 7) === 2 && K8S_EVENT_FIELDS[number] !== undefined && K8S_EVENT_FIELDS[number] !== '') {
        at[number] = reader.pos;
        reader.pos = fieldEnd(reader);
        continue;
      }
      if (tag === 16) {
        timestamp = reader.int64() as bigint;
        continue;
      }
      skipUnknown(reader, tag);
    }
    const text = (n: number): string => {
      if (at[n] === NONE) return '';
      field = K8S_EVENT_FIELDS[n]!;
      reader.pos = at[n]!;
      return reader.string();
    };
    const id = text(1);
    const resource = text(3);
    const action = text(4);
    const namespace = text(5);
    const name = text(6);
    const cluster = text(9) || batchCluster;
    const metadata: { [key: string]: string } = { [PAYLOAD_FORMAT]: K8S_EVENT_PAYLOAD_FORMAT };
    const word = porttiWord(resource, 'RESOURCE_');
    const kind = KIND_OF.get(word) ?? resource;
    if (kind !== '') metadata[K8S_OBJECT_KIND] = kind;
    if (name !== '') {
      metadata[K8S_OBJECT_NAME] = name;
      // A pod is also placed as one, so the Kubernetes enricher and pod filters find it.
      if (word === 'pod') metadata[K8S_POD_NAME] = name;
    }
    if (namespace !== '') metadata[K8S_NAMESPACE_NAME] = namespace;
    if (cluster !== '') metadata[K8S_CLUSTER_NAME] = cluster;
    return {
      id,
      timestampUnixNs: timestamp,
      source: PORTTI_SOURCE,
      eventType: `portti.${word}.${porttiWord(action, 'ACTION_')}`,
      metadata,
      payload: bytes.subarray(start, end),
      routeTo: [],
      severity: 0,
      outcome: 0,
    };
  } catch (err) {
    if (isInvalidUtf8(err)) {
      return { code: 'INVALID_EVENT', message: `K8sEvent ${field} is not valid UTF-8`, id: field === 'id' ? '' : idAt(reader, at[1]!) };
    }
    return { code: 'INVALID_EVENT', message: `malformed K8sEvent: ${(err as Error).message}`, malformed: true };
  } finally {
    reader.pos = end;
    bounded.len = outerLen;
  }
}

/** The event's id for a refusal, when it can be read ('' when it cannot). */
function idAt(reader: BinaryReader, at: number): string {
  if (at === NONE) return '';
  try {
    reader.pos = at;
    return reader.string();
  } catch {
    return '';
  }
}

/** A polku.v1 PorttiService/StreamK8sEvents request as decoded: its cluster and its events (refused ones as placeholders). */
export interface ReceivedK8sEvents {
  readonly cluster: string;
  readonly events: Event[];
}

/**
 * Decodes a polku.v1.K8sEventBatch, strictly and within the intake limits: the events are counted
 * from their framing first (event `maxBatchEvents + 1` refuses the message BATCH_TOO_LARGE without
 * decoding any), `cluster_id` must be UTF-8 (else INVALID_BATCH), and each event is decoded by
 * {@link decodeK8sEvent}, a refused one standing in its place so the others are still taken.
 * Bytes that are not a K8sEventBatch throw; the deserializer turns that into INVALID_BATCH.
 */
export function readK8sEventBatch(bytes: Uint8Array, limits: IntakeLimits = DEFAULT_LIMITS): ReceivedK8sEvents | UnreadableMessage {
  const reader = strictReader(bytes);
  const starts: number[] = [];
  let clusterAt = NONE;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === 10) {
      if (starts.length === limits.maxBatchEvents) {
        const max = limits.maxBatchEvents;
        return new UnreadableMessage(
          'BATCH_TOO_LARGE',
          `K8sEventBatch has more than ${max} events, limit ${max} (POLKU_MAX_BATCH_EVENTS); refused at event ${max + 1} without decoding the rest`,
        );
      }
      starts.push(reader.pos);
      reader.pos = fieldEnd(reader);
      continue;
    }
    if (tag === 18) {
      clusterAt = reader.pos;
      reader.pos = fieldEnd(reader);
      continue;
    }
    skipUnknown(reader, tag);
  }
  let cluster = '';
  if (clusterAt !== NONE) {
    reader.pos = clusterAt;
    try {
      cluster = reader.string();
    } catch (err) {
      if (isInvalidUtf8(err)) return new UnreadableMessage('INVALID_BATCH', 'K8sEventBatch cluster_id is not valid UTF-8');
      throw err;
    }
  }
  const events: Event[] = new Array<Event>(starts.length);
  for (let i = 0; i < starts.length; i++) {
    reader.pos = starts[i]!;
    const length = reader.uint32();
    const decoded = decodeK8sEvent(reader, bytes, length, cluster);
    events[i] = isRefusal(decoded) ? refusedEvent(decoded, decoded.id) : decoded;
  }
  return { cluster, events };
}

/**
 * Decodes a SendK8sEvent request (one polku.v1.K8sEvent) with the same rules. The message is the
 * event: a string that is not UTF-8 makes it a placeholder the hub refuses INVALID_EVENT (an
 * answer); bytes that are not protobuf are an unreadable message (INVALID_BATCH, which fails the call).
 */
export function readK8sEvent(bytes: Uint8Array): Event | UnreadableMessage {
  const reader = strictReader(bytes);
  const decoded = decodeK8sEvent(reader, bytes, bytes.length, '');
  if (!isRefusal(decoded)) return decoded;
  if (decoded.malformed) return new UnreadableMessage('INVALID_BATCH', decoded.message);
  return refusedEvent(decoded, decoded.id);
}
