import { polkuError } from '../errors.js';
import type { Ingestor } from './ingestor.js';

/**
 * Chooses the ingestor for a raw batch: by the batch's source, then by its format hint, then the
 * default (if one was set). Lookups are two Map reads per batch.
 */
export class IngestorTable {
  private readonly bySource = new Map<string, Ingestor>();
  private readonly byFormat = new Map<string, Ingestor>();
  private readonly fallback: Ingestor | undefined;
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
    if (defaultIngestor !== undefined) {
      this.fallback = ingestors.find((i) => i.name === defaultIngestor);
      if (!this.fallback) {
        throw polkuError(
          'POLKU_ERR_PIPELINE_INVALID',
          `default ingestor "${defaultIngestor}" is not among the ingestors (${[...names].join(', ') || 'none'})`,
        );
      }
    }
  }

  /** The ingestor for this source and format, or undefined when none applies. */
  select(source: string, format: string): Ingestor | undefined {
    return this.bySource.get(source) ?? (format === '' ? undefined : this.byFormat.get(format.toLowerCase())) ?? this.fallback;
  }
}
