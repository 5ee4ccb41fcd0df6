/**
 * CPU per event of the TAPIO batch decoder alone (src/ingest/agents/tapio.ts through
 * agent-batch.ts), on the batch bench/loadgen.ts `--tapio` sends (100 network events of ~405 B:
 * a TCP retransmit between two pods), with 64 decoded batches kept alive as the bench keeps
 * 64 batches in flight, so the garbage collector's share is in the figure.
 *
 *   node --import tsx bench/tapio-decode.ts
 *
 * Prints the minimum and median of 8 rounds of 2,000 batches, in CPU µs per event
 * (process.cpuUsage: figures that a loaded machine moves less than wall time).
 */
import { TapioIngestor } from '../src/ingest/agents/tapio.js';
import { DEFAULT_LIMITS } from '../src/ingest/intake-rules.js';
import { tapioBatch } from './lib/tapio-batch.js';

const EVENTS = 100;
const BATCHES_PER_ROUND = 2_000;
const ROUNDS = 8;
const IN_FLIGHT = 64;

// The same bytes the load generator sends (events of ~405 B, as bench/run.ts asks for).
const batch = tapioBatch(EVENTS, 405);
const ingestor = new TapioIngestor();
const ctx = { source: 'tapio', cluster: 'bench', format: 'protobuf', limits: DEFAULT_LIMITS };
const alive: unknown[] = [];

function round(): number {
  const before = process.cpuUsage();
  for (let i = 0; i < BATCHES_PER_ROUND; i++) {
    const result = ingestor.ingest(ctx, batch);
    if (result.events.length !== EVENTS || result.problems.length !== 0) throw new Error(JSON.stringify(result.problems));
    alive.push(result.events);
    if (alive.length > IN_FLIGHT) alive.shift();
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / (BATCHES_PER_ROUND * EVENTS);
}

const figures = Array.from({ length: ROUNDS }, round).sort((a, b) => a - b);
process.stdout.write(`tapio decode: CPU µs per event, min ${figures[0]!.toFixed(3)}, median ${figures[ROUNDS / 2]!.toFixed(3)}\n`);
