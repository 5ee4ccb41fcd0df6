/**
 * CPU per log record of the OTLP receiver's decoder alone (src/receive/otlp/export-decoder.ts), on
 * the request bench/otlp-loadgen.ts sends (100 records of ~400 B: a string body, three resource
 * attributes, scope, `event.name`, trace and span ids), with 64 decoded requests kept alive as
 * the bench keeps 64 calls in flight, so the garbage collector's share is in the figure.
 *
 *   node --import tsx bench/otlp-decode.ts            # decoding
 *   node --import tsx bench/otlp-decode.ts --ids      # and a ULID per record, as intake assigns
 *
 * Prints the minimum and median of 8 rounds of 2,000 requests, in CPU µs per record
 * (process.cpuUsage: figures that a loaded machine moves less than wall time).
 */
import { parseArgs } from 'node:util';
import { createUlidFactory } from '../src/ingest/ulid.js';
import { decodeExportLogs } from '../src/receive/otlp/export-decoder.js';
import { benchExportRequest } from './lib/otlp-request.js';

const { values } = parseArgs({ options: { ids: { type: 'boolean', default: false } }, strict: true });
const RECORDS = 100;
const REQUESTS_PER_ROUND = 2_000;
const ROUNDS = 8;
const IN_FLIGHT = 64;

// The same bytes the OTLP load generators send (records of ~400 B, as bench/run.ts asks for).
const request = benchExportRequest(RECORDS, 400);
const mapping = { eventTypeAttribute: 'event.name', idAttribute: 'log.record.uid', maxMetadataBytes: 16_384 };
const limits = { maxBatchEvents: 10_000, maxJsonDepth: 32 };
const newId = createUlidFactory();
const alive: unknown[] = [];

function round(): number {
  const before = process.cpuUsage();
  for (let i = 0; i < REQUESTS_PER_ROUND; i++) {
    const decoded = decodeExportLogs(request, mapping, limits);
    if (decoded.kind !== 'events') throw new Error(decoded.message);
    if (values.ids) for (const e of decoded.events) e.id = newId();
    alive.push(decoded.events);
    if (alive.length > IN_FLIGHT) alive.shift();
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / (REQUESTS_PER_ROUND * RECORDS);
}

const figures = Array.from({ length: ROUNDS }, round).sort((a, b) => a - b);
process.stdout.write(
  `decode${values.ids ? ' + ULID' : ''}: CPU µs per record, min ${figures[0]!.toFixed(3)}, median ${figures[ROUNDS / 2]!.toFixed(3)}\n`,
);
