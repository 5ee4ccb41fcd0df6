import { polkuError } from '../errors.js';
import type { IngestContext, Ingestor } from './ingestor.js';

/**
 * The source names upstream POLKU's clients send with raw bytes and no format hint, and the
 * format each one means. Used only when the format is empty and no ingestor claims the source.
 */
export const UPSTREAM_SOURCE_FORMATS: ReadonlyMap<string, string> = new Map([
  ['json', 'json'],
  ['json-lines', 'ndjson'],
  ['ndjson', 'ndjson'],
  ['passthrough', 'passthrough'],
  ['polku', 'protobuf'],
]);

/** Most names each list of an UNKNOWN_SOURCE message shows (a gateway with many plugins has many sources). */
const MAX_LISTED = 16;

/**
 * Chooses the ingestor for a raw batch: by the batch's source, then by its format hint (or, with
 * no hint, by upstream's source names: `json`, `json-lines`, `ndjson`, `passthrough`, `polku`),
 * then the default (if one was set). Lookups are two Map reads per batch.
 */
export class IngestorTable {
  private readonly bySource = new Map<string, Ingestor>();
  private readonly byFormat = new Map<string, Ingestor>();
  /** Upstream's source names, each bound to the ingestor of its format (told that format). */
  private readonly byUpstreamSource = new Map<string, Ingestor>();
  private readonly fallback: Ingestor | undefined;
  /** What works, for the UNKNOWN_SOURCE message; built once. */
  private readonly workingNames: string;
  readonly all: readonly Ingestor[];

  constructor(ingestors: readonly Ingestor[], defaultIngestor?: string) {
    this.all = ingestors;
    const names = new Set<string>();
    for (const ingestor of ingestors) {
      if (names.has(ingestor.name)) {
        throw polkuError('POLKU_ERR_PIPELINE_INVALID', `two ingestors are named "${ingestor.name}"`);
      }
      names.add(ingestor.name);
      for (const source of ingestor.sources ?? []) {
        const other = this.bySource.get(source);
        if (other) {
          throw polkuError(
            'POLKU_ERR_PIPELINE_INVALID',
            `source "${source}" is claimed by both ingestor "${other.name}" and "${ingestor.name}"`,
          );
        }
        this.bySource.set(source, ingestor);
      }
      // The first ingestor to claim a format keeps it, so users can put their own JSON parser first.
      for (const format of ingestor.formats ?? []) {
        const key = format.toLowerCase();
        if (!this.byFormat.has(key)) this.byFormat.set(key, ingestor);
      }
    }
    for (const [source, format] of UPSTREAM_SOURCE_FORMATS) {
      const ingestor = this.byFormat.get(format);
      if (ingestor) this.byUpstreamSource.set(source, withFormat(ingestor, format));
    }
    if (defaultIngestor !== undefined) {
      this.fallback = ingestors.find((i) => i.name === defaultIngestor);
      if (!this.fallback) {
        throw polkuError(
          'POLKU_ERR_PIPELINE_INVALID',
          `default ingestor "${defaultIngestor}" is not among the ingestors (${[...names].join(', ') || 'none'})`,
        );
      }
    }
    this.workingNames = [
      `formats: ${listed([...this.byFormat.keys()])}`,
      `sources: ${listed([...this.bySource.keys()])}`,
      `upstream source names (with no format): ${listed([...this.byUpstreamSource.keys()])}`,
    ].join('; ');
  }

  /** The ingestor for this source and format, or undefined when none applies. */
  select(source: string, format: string): Ingestor | undefined {
    return (
      this.bySource.get(source) ??
      (format === '' ? this.byUpstreamSource.get(source) : this.byFormat.get(format.toLowerCase())) ??
      this.fallback
    );
  }

  /** The UNKNOWN_SOURCE message for a batch {@link select} found no ingestor for: what was sent, and what works. */
  unknownSourceMessage(source: string, format: string): string {
    const sent = `no ingestor for source ${JSON.stringify(source.slice(0, 128))}${
      format ? ` or format ${JSON.stringify(format.slice(0, 128))}` : ' (and no format hint)'
    }`;
    return `${sent}; these work: ${this.workingNames}`;
  }
}

/** `ingestor` told `format` whatever the batch said (an empty hint), under the ingestor's own name. */
function withFormat(ingestor: Ingestor, format: string): Ingestor {
  return {
    name: ingestor.name,
    ingest: (ctx: IngestContext, data: Uint8Array) => ingestor.ingest({ ...ctx, format }, data),
  };
}

function listed(names: readonly string[]): string {
  if (names.length === 0) return '(none)';
  const shown = names.slice(0, MAX_LISTED).join(', ');
  return names.length > MAX_LISTED ? `${shown} and ${names.length - MAX_LISTED} more` : shown;
}
