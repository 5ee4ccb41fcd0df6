import type { Registry } from 'prom-client';
import type { DurableLogStats } from '../delivery/delivery-backend.js';
import type { Hub, IngestorCounts } from '../hub/hub.js';

/** One emitter's row in `polku top`. */
export interface TopEmitter {
  readonly name: string;
  /** Events delivered since the start (a counter: the client takes rates from two snapshots). */
  readonly forwarded: number;
  readonly retried: number;
  /** Events waiting for, in or retrying delivery (durable: log records past its cursor). */
  readonly queued: number;
  readonly inFlight: number;
  /** Durable mode: events and seconds behind the log's head (null in memory mode). */
  readonly lagEvents: number | null;
  readonly lagSeconds: number | null;
  readonly healthy: boolean;
}

/**
 * `GET /admin/top`: the gateway's counters and gauges at one moment, per stage. Counters only
 * grow; `polku top` takes two snapshots and divides by `uptimeMs`'s difference for rates. Built at
 * request time from `hub.stats()`, the hub's per-batch stage counts and the metrics registry: it
 * adds no work per event.
 */
export interface TopSnapshot {
  /** Wall-clock time of the snapshot (RFC 3339). */
  readonly time: string;
  /** Milliseconds since the hub started, on the hub's monotonic clock (rates divide by its difference). */
  readonly uptimeMs: number;
  readonly intake: { readonly received: number; readonly accepted: number };
  readonly ingestors: readonly IngestorCounts[];
  readonly middleware: ReadonlyArray<{ readonly name: string; readonly given: number; readonly kept: number; readonly dropped: number }>;
  readonly buffer: {
    readonly events: number;
    readonly capacity: number;
    readonly bytes: number;
    readonly maxBytes: number;
    readonly fill: number;
  };
  readonly emitters: readonly TopEmitter[];
  /** `polku_events_dropped_total` by reason (only reasons with drops). */
  readonly dropped: Readonly<Record<string, number>>;
  readonly durable: DurableLogStats | null;
  readonly taps: number;
}

type Values = ReadonlyArray<{ value: number; labels: Partial<Record<string, string | number>> }>;

async function valuesOf(registry: Registry, name: string): Promise<Values> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return [];
  return (await metric.get()).values as Values;
}

/** Sums a metric's series by one label (or in total with no label). */
async function sumBy(registry: Registry, name: string, label?: string): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  for (const v of await valuesOf(registry, name)) {
    const key = label === undefined ? '' : String(v.labels[label] ?? '');
    sums.set(key, (sums.get(key) ?? 0) + v.value);
  }
  return sums;
}

export async function topSnapshot(hub: Hub, registry: Registry, nowMs: number, uptimeMs: number): Promise<TopSnapshot> {
  const stats = hub.stats();
  const counts = hub.stageCounts();
  const [received, accepted, forwarded, retried, lagEvents, lagSeconds, healthy, mwDropped, dropped, taps] = await Promise.all([
    sumBy(registry, 'polku_events_received_total'),
    sumBy(registry, 'polku_events_accepted_total'),
    sumBy(registry, 'polku_events_forwarded_total', 'emitter'),
    sumBy(registry, 'polku_emit_retries_total', 'emitter'),
    sumBy(registry, 'polku_emitter_lag_events', 'emitter'),
    sumBy(registry, 'polku_emitter_lag_seconds', 'emitter'),
    sumBy(registry, 'polku_emitter_healthy', 'emitter'),
    sumBy(registry, 'polku_middleware_dropped_total', 'middleware'),
    sumBy(registry, 'polku_events_dropped_total', 'reason'),
    sumBy(registry, 'polku_tap_readers'),
  ]);
  const b = stats.buffer;
  return {
    time: new Date(nowMs).toISOString(),
    uptimeMs,
    intake: { received: received.get('') ?? 0, accepted: accepted.get('') ?? 0 },
    ingestors: counts.ingestors,
    middleware: counts.middleware.map((m) => ({ ...m, dropped: mwDropped.get(m.name) ?? 0 })),
    buffer: {
      events: b.events,
      capacity: b.capacity,
      bytes: b.bytes,
      maxBytes: b.maxBytes,
      // The fuller of the two bounds is the one that refuses first.
      fill: Math.max(b.capacity > 0 ? b.events / b.capacity : 0, b.maxBytes > 0 ? b.bytes / b.maxBytes : 0),
    },
    emitters: stats.emitters.map((e) => ({
      name: e.name,
      forwarded: forwarded.get(e.name) ?? 0,
      retried: retried.get(e.name) ?? 0,
      queued: e.depth,
      inFlight: e.inFlight,
      lagEvents: lagEvents.get(e.name) ?? null,
      lagSeconds: lagSeconds.get(e.name) ?? null,
      healthy: (healthy.get(e.name) ?? 1) === 1,
    })),
    dropped: Object.fromEntries([...dropped].filter(([, n]) => n > 0)),
    durable: stats.durable,
    taps: taps.get('') ?? 0,
  };
}
