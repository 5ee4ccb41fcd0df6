import type { Hub } from '../hub/hub.js';

/** GET /pipeline: the running pipeline, as upstream POLKU's `/pipeline` showed it. */
export interface PipelineView {
  /** Static and plugin ingestors, in the order a batch's source and format are matched. */
  ingestors: Array<{ name: string; sources: string[]; formats: string[] }>;
  /** The middleware chain, in the order events pass through it. */
  middleware: Array<{ position: number; name: string }>;
  /** Running emitters (plugins included); `default`: it gets events with an empty route_to. */
  emitters: Array<{ name: string; default: boolean; queued: number; inFlight: number }>;
  buffer: { capacity: number; size: number; bytes: number; maxBytes: number; overflow: string };
  /** `memory`, or `durable` with the log's figures. */
  delivery: { mode: 'memory' } | { mode: 'durable'; log: { bytes: number; maxBytes: number; full: boolean; nextSeq: number } };
}

/**
 * The pipeline's shape now: names, sources, formats and counts only; no addresses, tokens or
 * event content (README, "Coming from upstream POLKU"; docs/security.md says who may read it).
 */
export function pipelineView(hub: Hub): PipelineView {
  const { ingestors, middleware } = hub.parts;
  const stats = hub.stats();
  const b = stats.buffer;
  return {
    ingestors: ingestors.map((i) => ({ name: i.name, sources: [...(i.sources ?? [])], formats: [...(i.formats ?? [])] })),
    middleware: middleware.map((m, i) => ({ position: i + 1, name: m.name })),
    emitters: stats.emitters.map((e) => ({ name: e.name, default: e.isDefault, queued: e.depth, inFlight: e.inFlight })),
    buffer: { capacity: b.capacity, size: b.events, bytes: b.bytes, maxBytes: b.maxBytes, overflow: b.overflow },
    delivery: stats.durable
      ? {
          mode: 'durable',
          log: { bytes: stats.durable.bytes, maxBytes: stats.durable.maxBytes, full: stats.durable.full, nextSeq: stats.durable.nextSeq },
        }
      : { mode: 'memory' },
  };
}
