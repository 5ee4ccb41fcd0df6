import { StdoutEmitter } from '../emit/stdout.js';
import { hub, type HubBuilder } from '../hub/builder.js';
import { ElavaIngestor } from '../ingest/agents/elava.js';
import { PorttiIngestor } from '../ingest/agents/portti.js';
import { TapioIngestor } from '../ingest/agents/tapio.js';
import { JsonIngestor } from '../ingest/json.js';
import { PassthroughIngestor } from '../ingest/passthrough.js';

/**
 * What `polku serve` runs without a pipeline module: the agents' ingestors (chosen by source:
 * `tapio`, `elava`, `portti`), JSON and protobuf passthrough ingestors (chosen by format hint),
 * into the stdout emitter. Raw bytes with no format hint and an unclaimed source are refused with
 * UNKNOWN_SOURCE, so a typo never turns into silently mis-parsed data.
 */
export function defaultPipeline(): HubBuilder {
  return hub()
    .ingestor(new TapioIngestor())
    .ingestor(new ElavaIngestor())
    .ingestor(new PorttiIngestor())
    .ingestor(new JsonIngestor())
    .ingestor(new PassthroughIngestor())
    .emitter(new StdoutEmitter());
}
