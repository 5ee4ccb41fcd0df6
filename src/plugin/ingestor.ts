import { Event, type DeepPartial } from '../gen/polku/v1/event.js';
import { IngestorPluginService, PluginType, type IngestError, type IngestRequest, type IngestResponse } from '../gen/polku/v1/plugin.js';
import type { PluginOptions, PluginServer } from './options.js';
import { startPlugin, unary } from './plugin-server.js';
import { messageOf } from './runtime.js';

/**
 * An event as a plugin may write it: any field left out gets its default (empty id → the gateway
 * assigns a ULID; zero timestamp → the gateway's receive time). Timestamps may be bigint, number
 * or a decimal string of nanoseconds.
 */
export type EventInit = DeepPartial<Event>;

/** Where a batch of raw bytes came from, as the agent said. */
export interface IngestContext {
  /** The batch's source; one of the plugin's `sources`. */
  source: string;
  /** The agent's cluster, empty when it sent none. */
  cluster: string;
  /** The format hint (`csv`, `ndjson`…), empty when none. */
  format: string;
}

/** A part of the input that could not be parsed. */
export interface IngestProblem {
  message: string;
  /** More context: the bad line, the column. */
  details?: string;
  /** Byte offset in the input where the problem is. Left out, the gateway reports no offset. */
  offset?: number | bigint;
}

/** What `ingest` returns: the events, or the events plus what could not be parsed. */
export type IngestOutcome = EventInit[] | { events: EventInit[]; errors?: IngestProblem[] };

export interface IngestorPluginOptions extends PluginOptions {
  /** Batch sources this plugin parses (`PluginInfo.sources`), e.g. `['csv']`. */
  sources: string[];
  /** Turns raw bytes into events. A throw becomes one `IngestError` with its message. */
  ingest: (data: Uint8Array, ctx: IngestContext) => IngestOutcome | Promise<IngestOutcome>;
}

/** Sent as `IngestError.offset` when the plugin gave none: the gateway reads a negative offset as unknown. */
const UNKNOWN_OFFSET = -1n;

/**
 * Serves `polku.v1.IngestorPlugin`: the gateway hands the plugin raw batches of its `sources`
 * and gets events back. Resolves once listening.
 *
 * ```ts
 * await serveIngestor({ name: 'lines', sources: ['lines'], port: 9002,
 *   ingest: (data) => new TextDecoder().decode(data).split('\n').map((l) => ({ eventType: 'line', metadata: { l } })) });
 * ```
 */
export async function serveIngestor(options: IngestorPluginOptions): Promise<PluginServer> {
  if (typeof options?.ingest !== 'function') throw new TypeError('serveIngestor needs an ingest(data, ctx) function');
  const sources = options.sources;
  if (!Array.isArray(sources) || sources.length === 0 || sources.some((s) => typeof s !== 'string' || s === '')) {
    throw new TypeError('serveIngestor needs sources: one or more non-empty strings');
  }
  const info = {
    name: options.name,
    version: options.version ?? '',
    type: PluginType.PLUGIN_TYPE_INGESTOR,
    description: options.description ?? '',
    sources: [...sources],
    emitterName: '',
    capabilities: [...(options.capabilities ?? [])],
  };
  return startPlugin(options, info, IngestorPluginService, (life) => ({
    ingest: unary<IngestRequest, IngestResponse>(life.logger, 'Ingest', async (req) => {
      try {
        const ctx: IngestContext = { source: req.source, cluster: req.cluster, format: req.format };
        return toIngestResponse(await options.ingest(req.data, ctx));
      } catch (err) {
        life.logger.error('ingest threw', { error: messageOf(err), source: req.source, bytes: req.data.length });
        return { events: [], errors: [{ message: messageOf(err), details: '', offset: UNKNOWN_OFFSET }] };
      }
    }),
  }));
}

/**
 * The wire answer: each event filled with defaults. An event that cannot be encoded (a timestamp
 * that is not an int64, a payload that is not bytes) becomes an `IngestError` naming its index.
 */
export function toIngestResponse(outcome: IngestOutcome): IngestResponse {
  const given = Array.isArray(outcome) ? outcome : (outcome?.events ?? []);
  const problems = Array.isArray(outcome) ? [] : (outcome?.errors ?? []);
  const events: Event[] = [];
  const errors: IngestError[] = problems.map(toIngestError);
  given.forEach((init, i) => {
    try {
      events.push(toEvent(init));
    } catch (err) {
      errors.push({ message: `event ${i} is not valid: ${messageOf(err)}`, details: '', offset: UNKNOWN_OFFSET });
    }
  });
  return { events, errors };
}

function toEvent(init: EventInit): Event {
  if (init === null || typeof init !== 'object') throw new TypeError('not an object');
  const event = Event.fromPartial(init as Event);
  if (BigInt.asIntN(64, event.timestampUnixNs) !== event.timestampUnixNs) throw new RangeError('timestampUnixNs does not fit in int64');
  if (!(event.payload instanceof Uint8Array)) throw new TypeError('payload must be a Uint8Array');
  event.routeTo = event.routeTo.map(String);
  return event;
}

function toIngestError(p: IngestProblem): IngestError {
  let offset = UNKNOWN_OFFSET;
  if (typeof p.offset === 'bigint') offset = p.offset;
  else if (typeof p.offset === 'number' && Number.isFinite(p.offset)) offset = BigInt(Math.trunc(p.offset));
  return { message: String(p.message ?? ''), details: p.details == null ? '' : String(p.details), offset };
}
