/**
 * A CSV ingestor plugin: agents send raw CSV with `source: "csv"`, and each row becomes an event
 * whose metadata holds the row's columns, keyed by the header row.
 *
 *   node --import tsx examples/plugins/typescript/csv-ingestor.ts --port 9002 [--register localhost:50051]
 *
 * A row whose column count differs from the header is reported back as an ingest error at its
 * byte offset; the other rows still become events.
 */
import { commandLineOptions, serveIngestor, type EventInit, type IngestProblem } from '../../../src/plugin/index.js';

const server = await serveIngestor({
  name: 'csv-ingestor',
  sources: ['csv'], // raw batches with this source come here
  version: '1.0.0',
  description: 'One event per CSV row, columns as metadata',
  handleSignals: true,
  logger: console,
  ...commandLineOptions(),
  ingest(data, ctx) {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(data); // invalid UTF-8 throws: one error for the batch
    const [header, ...rows] = parseCsv(text);
    const events: EventInit[] = [];
    const errors: IngestProblem[] = [];
    for (const row of rows) {
      if (row.fields.length !== header!.fields.length) {
        const offset = Buffer.byteLength(text.slice(0, row.start));
        errors.push({
          message: `row has ${row.fields.length} columns, header has ${header!.fields.length}`,
          details: row.fields.join(','),
          offset,
        });
        continue;
      }
      const metadata = Object.fromEntries(header!.fields.map((name, i) => [name, row.fields[i]!]));
      // No id: the gateway gives each event a ULID. No timestamp: it stamps the receive time.
      events.push({ eventType: 'csv.row', source: ctx.source, metadata });
    }
    return { events, errors };
  },
});
console.log(`csv ingestor listening on ${server.address}`);

/** RFC 4180 rows: quoted fields may hold commas, newlines and doubled quotes. `start` is the row's first character. */
function parseCsv(text: string): Array<{ start: number; fields: string[] }> {
  const rows: Array<{ start: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let start = 0;
  const endRow = (next: number): void => {
    fields.push(field);
    if (fields.length > 1 || fields[0] !== '') rows.push({ start, fields }); // skip blank lines
    fields = [];
    field = '';
    start = next;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n') endRow(i + 1);
    else if (c !== '\r') field += c;
  }
  if (field !== '' || fields.length > 0) endRow(text.length);
  return rows;
}
