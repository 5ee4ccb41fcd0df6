import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import { systemClock, type Clock } from '../clock.js';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import { resultOfFailures } from './batch-split.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type EventFailure, type ProbeResult } from './emitter.js';
import { hostPort, probeFail, probeFailure, probeOk } from './probe.js';
import { eventToJson } from './event-json.js';
import { S3EmitterMetrics, type S3Outcome, type S3Series } from './s3-metrics.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';
import { loadS3 } from './client-libraries.js';

const gzip = promisify(gzipCallback);

const DEFAULT_TIMEOUT_MS = 30_000;
/** Objects of one batch written at once (one per source and hour). */
const PARALLEL_PUTS = 8;
/** Encoded characters of the first id kept in a key; the content hash after it keeps keys apart. */
const KEY_ID_CHARS = 128;
const NS_PER_MS = 1_000_000n;

export interface S3EmitterOptions {
  /** Default `s3`. */
  name?: string;
  bucket: string;
  /** Keys start with `<prefix>/`; default none. */
  prefix?: string;
  /** An S3-compatible endpoint (MinIO, Ceph, R2…); default AWS for the region. */
  endpoint?: string;
  /** Default `us-east-1` (what most S3-compatible servers expect). */
  region?: string;
  /** Default: the SDK's own chain (AWS_* environment, web identity in a pod, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** gzip each object (`.ndjson.gz`, `Content-Encoding: gzip`). Default true. */
  gzip?: boolean;
  /** `endpoint/bucket/key` rather than `bucket.endpoint/key`; default true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** One PutObject, connect to last byte. Default 30 s. */
  timeoutMs?: number;
  /**
   * The SDK's own attempts per PutObject. Default 1: the delivery queue retries what is retryable
   * (and durable mode keeps it on disk meanwhile), so the SDK does not hold the queue with its own.
   */
  maxAttempts?: number;
}

/** Every key of {@link S3EmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const S3_EMITTER_OPTION_KEYS = optionKeys<S3EmitterOptions>({
  name: true,
  bucket: true,
  prefix: true,
  endpoint: true,
  region: true,
  credentials: true,
  gzip: true,
  forcePathStyle: true,
  timeoutMs: true,
  maxAttempts: true,
});
const S3_CREDENTIALS_KEYS = optionKeys<NonNullable<S3EmitterOptions['credentials']>>({
  accessKeyId: true,
  secretAccessKey: true,
  sessionToken: true,
});

/** One object to write: the events of one source and hour, in batch order. */
interface Group {
  source: string;
  hour: string; // `dt=YYYY-MM-DD/hour=HH`
  indices: number[];
}

/**
 * Writes each batch as NDJSON objects (one `eventToJson` line per event, the stdout emitter's
 * format) to an S3 bucket, one object per source and hour of the events' own timestamps:
 *
 * `<prefix>/source=<source>/dt=YYYY-MM-DD/hour=HH/<first-id>-<count>-<hash>.ndjson[.gz]`
 *
 * (source and id URL-encoded; hash: the first 12 hex digits of the SHA-256 of the NDJSON). Keys
 * follow from the content, so a batch sent again overwrites its own object instead of adding a
 * copy, and two different batches never share a key.
 *
 * Results per object (its events share it): the SDK's `$retryable`, 5xx, 408, 429, throttling, a
 * timeout or a network error are retryable; 401/403/404 (credentials, a missing bucket) are
 * retryable too, so events wait while the operator fixes it (unhealthy meanwhile); any other 4xx
 * is `failed` with the service's code and message.
 *
 * Metrics: `polku_s3_objects_total{emitter,outcome}`, `polku_s3_events_total{emitter,outcome}`,
 * `polku_s3_bytes_total{emitter}` (as stored) and `polku_s3_put_seconds{emitter}`.
 */
export class S3Emitter implements Emitter {
  readonly name: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly gzip: boolean;
  private clock: Clock = systemClock;
  private log: Logger | null = null;
  private series: S3Series | null = null;
  private lastError: string | null = null;
  private closed = false;
  /** The endpoint (AWS for the region when none is given), for probe. */
  private readonly where: string;

  constructor(options: S3EmitterOptions) {
    this.name = options.name ?? 's3';
    checkOptionKeys(`S3Emitter "${this.name}"`, options, S3_EMITTER_OPTION_KEYS);
    // The AWS SDK writes its own bookkeeping (`$source`) into a credentials object it was given: an
    // object shared with the caller's own S3Client carries it, and it is not a misspelt option.
    const credentialKeys =
      options.credentials && Object.fromEntries(Object.entries(options.credentials).filter(([k]) => !k.startsWith('$')));
    checkOptionKeys(`S3Emitter "${this.name}"`, credentialKeys, S3_CREDENTIALS_KEYS, 'credentials.');
    const owner = `s3 emitter "${this.name}"`;
    if (typeof options.bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw polkuError(
        'POLKU_ERR_PIPELINE_INVALID',
        `${owner}: bucket ${JSON.stringify(options.bucket)} is not a valid bucket name (3-63 of a-z 0-9 . -)`,
      );
    }
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.gzip = options.gzip ?? true;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const maxAttempts = options.maxAttempts ?? 1;
    for (const [option, value] of [
      ['timeoutMs', timeoutMs],
      ['maxAttempts', maxAttempts],
    ] as const) {
      if (!Number.isInteger(value) || value <= 0) {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: ${option} must be a positive whole number, got ${value}`);
      }
    }
    if (options.endpoint !== undefined) {
      try {
        new URL(options.endpoint);
      } catch {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `${owner}: endpoint ${JSON.stringify(options.endpoint)} is not a URL`);
      }
    }
    this.where =
      options.endpoint === undefined
        ? `AWS ${options.region ?? 'us-east-1'}`
        : hostPort(new URL(options.endpoint), new URL(options.endpoint).protocol === 'https:' ? 443 : 80);
    this.client = new (loadS3().S3Client)({
      region: options.region ?? 'us-east-1',
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      // A copy: the SDK writes its own bookkeeping ($source) into the object it is given, and the
      // caller's may be shared with another emitter.
      ...(options.credentials === undefined ? {} : { credentials: { ...options.credentials } }),
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      maxAttempts,
      requestHandler: { requestTimeout: timeoutMs, connectionTimeout: Math.min(timeoutMs, 10_000) },
      // A checksum only where the API requires one: PutObject's Content-MD5/CRC headers are not
      // understood alike by every S3-compatible server.
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
  }

  init(ctx: ComponentContext): void {
    this.clock = ctx.clock;
    this.log = ctx.logger.child({ component: 's3-emitter', emitter: this.name });
    this.series = S3EmitterMetrics.in(ctx.registry).series(this.name);
  }

  async emit(events: readonly Event[]): Promise<EmitResult> {
    if (this.closed) return EmitResults.retryable(`s3 emitter "${this.name}" is shut down`);
    if (events.length === 0) return EmitResults.success();
    let result: EmitResult;
    try {
      const groups = groupBySourceAndHour(events);
      const failures: EventFailure[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < groups.length) {
          const group = groups[next++]!;
          const failure = await this.put(events, group);
          if (failure !== null) for (const index of group.indices) failures.push({ index, ...failure });
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL_PUTS, groups.length) }, worker));
      failures.sort((a, b) => a.index - b.index);
      result = resultOfFailures(events.length, failures);
    } catch (err) {
      result = EmitResults.retryable(`s3 emitter failed: ${(err as Error).message}`);
    }
    this.lastError = result.status === 'retryable' || result.status === 'failed' ? result.error : null;
    return result;
  }

  health(): EmitterHealth {
    return this.lastError === null ? { healthy: true, message: 'ok' } : { healthy: false, message: this.lastError };
  }

  /** HeadBucket: the endpoint, the credentials and the bucket, with nothing written. */
  async probe(signal: AbortSignal): Promise<ProbeResult> {
    const target = `${this.where} bucket ${this.bucket}`;
    try {
      await this.client.send(new (loadS3().HeadBucketCommand)({ Bucket: this.bucket }), { abortSignal: signal });
      return probeOk(target);
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) return probeFail(`${target}: the bucket does not exist`, 'create it, or fix bucket (and region)');
      if (status === 403 || status === 401)
        return probeFail(
          `${target}: access denied (HTTP ${status})`,
          'check the credentials and their policy (s3:ListBucket on the bucket, s3:PutObject)',
        );
      if (status === 301) return probeFail(`${target}: the bucket is in another region`, "set region to the bucket's");
      return probeFailure(target, err, signal);
    }
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    this.client.destroy();
  }

  /** Writes one group's object; null when stored, else why not. */
  private async put(events: readonly Event[], group: Group): Promise<{ retryable: boolean; error: string } | null> {
    let ndjson = '';
    for (const i of group.indices) ndjson += JSON.stringify(eventToJson(events[i]!)) + '\n';
    const text = Buffer.from(ndjson);
    const body = this.gzip ? await gzip(text) : text;
    const key = this.key(events[group.indices[0]!]!.id, group, text);
    const started = this.clock.monotonicMs();
    let outcome: S3Outcome = 'success';
    let failure: { retryable: boolean; error: string } | null = null;
    try {
      await this.client.send(
        new (loadS3().PutObjectCommand)({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/x-ndjson',
          ...(this.gzip ? { ContentEncoding: 'gzip' } : {}),
        }),
      );
    } catch (err) {
      failure = judge(err);
      outcome = failure.retryable ? 'retryable' : 'failed';
      this.log?.warn({ key, error: failure.error }, 'S3 PutObject failed');
    }
    this.series?.object(outcome, group.indices.length, failure === null ? body.length : 0, (this.clock.monotonicMs() - started) / 1000);
    return failure;
  }

  private key(firstId: string, group: Group, ndjson: Buffer): string {
    const id = encodeURIComponent(firstId).slice(0, KEY_ID_CHARS);
    const hash = createHash('sha256').update(ndjson).digest('hex').slice(0, 12);
    const file = `${id}-${group.indices.length}-${hash}.ndjson${this.gzip ? '.gz' : ''}`;
    const path = `source=${encodeURIComponent(group.source)}/${group.hour}/${file}`;
    return this.prefix === '' ? path : `${this.prefix}/${path}`;
  }
}

/** Groups in order of first appearance; each keeps its events' batch order. */
function groupBySourceAndHour(events: readonly Event[]): Group[] {
  const groups = new Map<string, Group>();
  // Events of one batch mostly share an hour: format each distinct hour once.
  const hours = new Map<bigint, string>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const hourNs = e.timestampUnixNs / (3_600_000n * NS_PER_MS);
    let hour = hours.get(hourNs);
    if (hour === undefined) {
      const iso = new Date(Number(hourNs) * 3_600_000).toISOString(); // YYYY-MM-DDTHH:…
      hour = `dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}`;
      hours.set(hourNs, hour);
    }
    const k = `${hour}\u0000${e.source}`;
    const g = groups.get(k);
    if (g) g.indices.push(i);
    else groups.set(k, { source: e.source, hour, indices: [i] });
  }
  return [...groups.values()];
}

const RETRYABLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
]);

/** The SDK's error as retryable or not, with the service's code and message. */
export function judge(err: unknown): { retryable: boolean; error: string } {
  const e = err as { name?: string; message?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  const text = `S3 ${status ?? 'no answer'} ${name}: ${e.message ?? String(err)}`;
  if (e.$retryable !== undefined && e.$retryable !== null) return { retryable: true, error: text };
  if (status === undefined) return { retryable: true, error: text }; // network, timeout, DNS
  if (status >= 500 || status === 408 || status === 429 || RETRYABLE_CODES.has(name)) return { retryable: true, error: text };
  // Credentials or bucket: the configuration is wrong, not the events; they wait while it is fixed.
  if (status === 401 || status === 403 || status === 404) return { retryable: true, error: text };
  return { retryable: false, error: text };
}
