import { Counter, Gauge, type Registry } from 'prom-client';
import { eventToJson } from '../emit/event-json.js';
import type { Event } from '../gen/polku/v1/event.js';

/** Taps open at once when the gateway's settings do not say (a fifth reader is answered 429). */
export const DEFAULT_MAX_TAPS = 4;
/** Sampled lines a reader may hold before its socket takes them; more are dropped and counted. */
export const DEFAULT_TAP_RING = 256;

/** Where in the pipeline a tap samples. */
export type TapStage = 'ingest' | 'middleware' | 'emitter';

/**
 * What a tap keeps: every condition given must hold. Exact source, a prefix of the event type,
 * and one metadata key with its exact value: enough to find a stream, cheap to test per event.
 */
export interface TapFilter {
  readonly source?: string | undefined;
  readonly typePrefix?: string | undefined;
  readonly metadata?: { readonly key: string; readonly value: string } | undefined;
}

export interface TapSpec {
  readonly stage: TapStage;
  /** The emitter whose deliveries are sampled (stage `emitter` only). */
  readonly emitter?: string | undefined;
  readonly filter: TapFilter;
  /** Events to sample before the tap ends by itself (0: until the reader leaves). */
  readonly limit: number;
}

/**
 * Where a reader's lines go: an HTTP response in the gateway, an array in tests. `write` answers
 * false when the destination is full (a socket's backpressure); `onDrain` is called once it has
 * room again.
 */
export interface TapSink {
  write(line: string): boolean;
  onDrain(resume: () => void): void;
  /** The tap is over; no more writes. */
  end(): void;
}

/** Why a tap ended, in its last line. */
export type TapEnd = 'limit' | 'reader_left' | 'gateway_stopping';

/** The control lines a tap writes besides events; all under one key so readers tell them apart. */
export interface TapControl {
  polku_tap:
    | { open: { at: string; source?: string; type?: string; meta?: string; limit: number } }
    | { dropped: number }
    | { end: TapEnd; sampled: number; dropped: number };
}

/** Parses `key=value` (the `meta` filter); undefined when there is no `=` or no key. */
export function parseMetadataFilter(raw: string): { key: string; value: string } | undefined {
  const at = raw.indexOf('=');
  if (at <= 0) return undefined;
  return { key: raw.slice(0, at), value: raw.slice(at + 1) };
}

function matches(f: TapFilter, e: Event): boolean {
  if (f.source !== undefined && e.source !== f.source) return false;
  if (f.typePrefix !== undefined && !e.eventType.startsWith(f.typePrefix)) return false;
  if (f.metadata !== undefined && e.metadata[f.metadata.key] !== f.metadata.value) return false;
  return true;
}

/**
 * One open tap. Matching events are turned into their JSON line at once (so `ingest` shows an event
 * as it was before middleware changed it) into a small ring; the ring goes to the sink on the next
 * turn of the event loop. While the sink pushes back, or the ring is full, samples are dropped and
 * counted: the pipeline never waits for a reader.
 */
export class TapReader {
  readonly spec: TapSpec;
  private readonly ring: string[] = [];
  private readonly ringSize: number;
  private blocked = false;
  private flushQueued = false;
  private ended = false;
  private sampled = 0;
  private dropped = 0;
  /** Drops the reader has not been told of yet. */
  private unreported = 0;

  constructor(
    spec: TapSpec,
    private readonly sink: TapSink,
    private readonly taps: Taps,
    ringSize: number,
  ) {
    this.spec = spec;
    this.ringSize = ringSize;
    const { filter: f } = spec;
    this.writeControl({
      polku_tap: {
        open: {
          at: spec.stage === 'emitter' ? `emitter:${spec.emitter}` : spec.stage,
          ...(f.source !== undefined ? { source: f.source } : {}),
          ...(f.typePrefix !== undefined ? { type: f.typePrefix } : {}),
          ...(f.metadata !== undefined ? { meta: `${f.metadata.key}=${f.metadata.value}` } : {}),
          limit: spec.limit,
        },
      },
    });
  }

  /** Takes the matching events of one batch; returns how many were dropped. */
  offer(events: readonly Event[]): number {
    if (this.ended) return 0;
    const f = this.spec.filter;
    let dropped = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (!matches(f, e)) continue;
      if (this.spec.limit > 0 && this.sampled >= this.spec.limit) break;
      if (this.blocked || this.ring.length >= this.ringSize) {
        dropped++;
        continue;
      }
      this.ring.push(JSON.stringify(eventToJson(e)));
      this.sampled++;
    }
    if (dropped > 0) {
      this.dropped += dropped;
      this.unreported += dropped;
    }
    if ((this.ring.length > 0 || this.limitReached) && !this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
    return dropped;
  }

  /** Ends the tap with its last line (unless the reader is gone). Runs once. */
  close(why: TapEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.taps.detach(this);
    if (why !== 'reader_left') {
      for (const line of this.ring) this.sink.write(line);
      this.writeControl({ polku_tap: { end: why, sampled: this.sampled, dropped: this.dropped } });
    }
    this.ring.length = 0;
    this.sink.end();
  }

  private get limitReached(): boolean {
    return this.spec.limit > 0 && this.sampled >= this.spec.limit;
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.ended || this.blocked) return;
    if (this.unreported > 0) {
      const n = this.unreported;
      this.unreported = 0;
      this.writeControl({ polku_tap: { dropped: n } });
    }
    let i = 0;
    while (i < this.ring.length && !this.blocked) {
      if (!this.sink.write(this.ring[i++]!)) this.block();
    }
    this.ring.splice(0, i);
    if (this.limitReached && this.ring.length === 0 && !this.blocked) this.close('limit');
  }

  private block(): void {
    this.blocked = true;
    this.sink.onDrain(() => {
      this.blocked = false;
      this.flush();
    });
  }

  private writeControl(control: TapControl): void {
    if (!this.sink.write(JSON.stringify(control))) this.block();
  }
}

export interface TapsOptions {
  registry: Registry;
  /** Readers open at once (default {@link DEFAULT_MAX_TAPS}). */
  maxReaders?: number;
  /** Lines a reader holds before dropping (default {@link DEFAULT_TAP_RING}). */
  ringSize?: number;
}

/**
 * The pipeline's tap points. The hub and the emitter queues call `offer` only after reading
 * `active`, so with no tap open a batch pays one boolean check per point.
 */
export class Taps {
  /** True while any tap is open. */
  active = false;
  readonly maxReaders: number;
  private readers: TapReader[] = [];
  private readonly ringSize: number;
  private readonly dropped: Counter<'at'>;

  constructor(o: TapsOptions) {
    this.maxReaders = o.maxReaders ?? DEFAULT_MAX_TAPS;
    this.ringSize = o.ringSize ?? DEFAULT_TAP_RING;
    this.dropped = new Counter({
      name: 'polku_tap_dropped_total',
      help: 'Sampled events a tap reader did not get because it read too slowly (its socket pushed back or its ring was full), by tap point',
      labelNames: ['at'],
      registers: [o.registry],
    });
    for (const at of ['ingest', 'middleware', 'emitter']) this.dropped.labels(at).inc(0);
    const readers = () => this.readers.length;
    new Gauge({
      name: 'polku_tap_readers',
      help: 'Taps open now (polku tap, GET /admin/tap)',
      registers: [o.registry],
      collect() {
        this.set(readers());
      },
    });
  }

  /** Whether one more tap may open. */
  get hasRoom(): boolean {
    return this.readers.length < this.maxReaders;
  }

  /** Opens a tap, or answers undefined when {@link maxReaders} are open already. */
  open(spec: TapSpec, sink: TapSink): TapReader | undefined {
    if (this.readers.length >= this.maxReaders) return undefined;
    const reader = new TapReader(spec, sink, this, this.ringSize);
    this.readers = [...this.readers, reader];
    this.active = true;
    return reader;
  }

  /** Offers a batch at `stage` (for `emitter`, the emitter that delivered it). Call only when `active`. */
  offer(stage: TapStage, events: readonly Event[], emitter?: string): void {
    const readers = this.readers;
    for (let i = 0; i < readers.length; i++) {
      const r = readers[i]!;
      if (r.spec.stage !== stage || (stage === 'emitter' && r.spec.emitter !== emitter)) continue;
      const dropped = r.offer(events);
      if (dropped > 0) this.dropped.labels(stage).inc(dropped);
    }
  }

  /** Ends every open tap (the gateway is stopping). */
  closeAll(why: TapEnd): void {
    for (const r of this.readers) r.close(why);
  }

  /** @internal A reader that ended leaves the table. */
  detach(reader: TapReader): void {
    this.readers = this.readers.filter((r) => r !== reader);
    this.active = this.readers.length > 0;
  }
}
