import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { systemClock, systemTimers } from '../clock.js';
import { loadPipeline } from '../config/load-pipeline.js';
import type { Emitter, EmitResult } from '../emit/emitter.js';
import type { EventJson } from '../emit/event-json.js';
import { polkuError } from '../errors.js';
import { ownArgsCommand, type Command } from './command.js';
import { Event, Outcome, Severity } from '../gen/polku/v1/event.js';
import type { Ack } from '../gen/polku/v1/gateway.js';
import { DEFAULT_BUFFER, DEFAULT_DELIVERY } from '../hub/builder.js';
import { Hub } from '../hub/hub.js';
import { DEFAULT_MAX_SOURCE_LABELS } from '../hub/hub-metrics.js';
import type { IntakeRequest } from '../hub/intake-request.js';
import { Taps } from '../hub/taps.js';
import { DEFAULT_LIMITS } from '../ingest/intake-rules.js';
import { silentLogger } from '../observability/logger.js';
import { createRegistry } from '../observability/metrics.js';
import { processIo, type CliIo } from './admin-endpoint.js';

export const TEST_USAGE = `polku test MODULE --input INPUTS.ndjson --expect EXPECTED.ndjson
  Runs a pipeline module's ingestors and middleware (never its emitters) over the inputs and
  compares the events that come out with the expected ones; exit 0 when they match, 1 otherwise.
  INPUTS: one JSON object a line, either {"source", "format"?, "data" | "data_base64"} (bytes for
          an ingestor) or {"event": {...}} (an event in the emitters' JSON shape)
  EXPECTED: one event a line in the emitters' JSON shape, with only the fields to compare
          (id and timestamp_unix_ns are assigned by the gateway: leave them out unless you set them)`;

/** The fields of an output event that an expected event may name. */
const FIELDS = new Set<keyof EventJson>([
  'id',
  'timestamp_unix_ns',
  'source',
  'event_type',
  'metadata',
  'payload',
  'payload_base64',
  'route_to',
  'severity',
  'outcome',
]);

/** One input line, as the hub gets it. */
interface Input {
  readonly line: number;
  readonly request: IntakeRequest;
}

/** An event that came out of middleware, with the input line that produced it. */
interface Output {
  readonly line: number;
  readonly event: EventJson;
}

/**
 * `polku test`: like `vector test`, a pipeline's own unit test for users' CI. The module's
 * ingestors and middleware run in a hub of their own; its emitters are replaced by stand-ins of
 * the same names (so routing and its refusals are real) that send nothing anywhere. What
 * middleware lets through is read at the `middleware` tap point.
 */
export async function runTest(args: string[], io: CliIo = processIo()): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { input: { type: 'string' }, expect: { type: 'string' } },
  });
  const [module, ...extra] = positionals;
  if (!module || extra.length > 0 || !values.input || !values.expect) {
    throw polkuError('POLKU_ERR_CLI_USAGE', `polku test wants one MODULE, --input and --expect\n${TEST_USAGE}`);
  }
  const inputs = parseInputs(await readText(values.input, '--input'), values.input);
  const expected = parseExpected(await readText(values.expect, '--expect'), values.expect);
  const { outputs, refusals } = await runPipeline(module, inputs);
  const problems = compare(expected, outputs);
  for (const r of refusals) io.out(`note: input line ${r.line}: ${r.code}: ${r.message}`);
  if (problems.length === 0) {
    io.out(`PASS ${module}: ${outputs.length} events as expected (${values.input} → ${values.expect})`);
    return 0;
  }
  for (const p of problems) io.out(p);
  io.out(`FAIL ${module}: ${problems.length} of ${Math.max(expected.length, outputs.length)} events differ`);
  return 1;
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw polkuError(
      'POLKU_ERR_CLI_USAGE',
      `${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

function jsonLines(text: string, path: string): Array<{ line: number; value: Record<string, unknown> }> {
  const out: Array<{ line: number; value: Record<string, unknown> }> = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw polkuError('POLKU_ERR_CLI_USAGE', `${path}:${i + 1}: not JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw polkuError('POLKU_ERR_CLI_USAGE', `${path}:${i + 1}: want one JSON object a line`);
    out.push({ line: i + 1, value: value as Record<string, unknown> });
  });
  return out;
}

function parseInputs(text: string, path: string): Input[] {
  return jsonLines(text, path).map(({ line, value: v }) => {
    const at = `${path}:${line}`;
    const source = typeof v['source'] === 'string' ? v['source'] : undefined;
    if (v['event'] !== undefined) {
      const event = eventOfJson(v['event'], at);
      return { line, request: { source: source ?? event.source, cluster: '', payload: { kind: 'events', events: [event] } } };
    }
    if (source === undefined)
      throw polkuError('POLKU_ERR_CLI_USAGE', `${at}: an input wants "source" with "data" or "data_base64", or "event"`);
    let data: Uint8Array;
    if (typeof v['data'] === 'string') data = Buffer.from(v['data'], 'utf8');
    else if (typeof v['data_base64'] === 'string') data = Buffer.from(v['data_base64'], 'base64');
    else throw polkuError('POLKU_ERR_CLI_USAGE', `${at}: "data" (text) or "data_base64" is missing`);
    const format = typeof v['format'] === 'string' ? v['format'] : '';
    return { line, request: { source, cluster: '', payload: { kind: 'raw', data, format } } };
  });
}

/** An event from its JSON shape (as emitters write it and `polku tap` prints it). */
function eventOfJson(raw: unknown, at: string): Event {
  if (typeof raw !== 'object' || raw === null) throw polkuError('POLKU_ERR_CLI_USAGE', `${at}: "event" must be an object`);
  const j = raw as Partial<EventJson>;
  const severity = j.severity === undefined ? 0 : Severity[j.severity as keyof typeof Severity];
  const outcome = j.outcome === undefined ? 0 : Outcome[j.outcome as keyof typeof Outcome];
  if (typeof severity !== 'number') throw polkuError('POLKU_ERR_CLI_USAGE', `${at}: unknown severity "${j.severity}"`);
  if (typeof outcome !== 'number') throw polkuError('POLKU_ERR_CLI_USAGE', `${at}: unknown outcome "${j.outcome}"`);
  return Event.fromPartial({
    id: j.id ?? '',
    timestampUnixNs: BigInt(j.timestamp_unix_ns ?? 0),
    source: j.source ?? '',
    eventType: j.event_type ?? '',
    metadata: j.metadata ?? {},
    payload: j.payload_base64 !== undefined ? Buffer.from(j.payload_base64, 'base64') : Buffer.from(j.payload ?? '', 'utf8'),
    routeTo: j.route_to ?? [],
    severity,
    outcome,
  });
}

function parseExpected(text: string, path: string): Array<Partial<EventJson>> {
  return jsonLines(text, path).map(({ line, value }) => {
    for (const key of Object.keys(value)) {
      if (!FIELDS.has(key as keyof EventJson))
        throw polkuError('POLKU_ERR_CLI_USAGE', `${path}:${line}: "${key}" is not an event field (${[...FIELDS].join(', ')})`);
    }
    return value as Partial<EventJson>;
  });
}

/** Stands in for a module's emitter: same name, sends nothing. */
class StandInEmitter implements Emitter {
  constructor(readonly name: string) {}
  emit(): Promise<EmitResult> {
    return Promise.resolve({ status: 'success' });
  }
}

async function runPipeline(
  module: string,
  inputs: readonly Input[],
): Promise<{ outputs: Output[]; refusals: Array<{ line: number; code: string; message: string }> }> {
  const definition = (await loadPipeline(module)).definition();
  const registry = createRegistry();
  // Every sample kept: the ring is as long as the test is.
  const taps = new Taps({ registry, ringSize: Number.MAX_SAFE_INTEGER });
  const hub = new Hub(
    {
      ingestors: definition.ingestors,
      ...(definition.defaultIngestor !== undefined ? { defaultIngestor: definition.defaultIngestor } : {}),
      middleware: definition.middleware,
      emitters: definition.emitters.map(({ emitter, isDefault }) => ({ emitter: new StandInEmitter(emitter.name), isDefault })),
    },
    {
      limits: DEFAULT_LIMITS,
      buffer: { ...DEFAULT_BUFFER, capacity: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER },
      delivery: DEFAULT_DELIVERY,
      logger: silentLogger(),
      registry,
      clock: systemClock,
      timers: systemTimers,
      maxSourceLabels: DEFAULT_MAX_SOURCE_LABELS,
      taps,
    },
  );
  const lines: string[] = [];
  taps.open(
    { stage: 'middleware', filter: {}, limit: 0 },
    { write: (l) => lines.push(l) > 0, onDrain: () => undefined, end: () => undefined },
  );
  await hub.start();
  const outputs: Output[] = [];
  const refusals: Array<{ line: number; code: string; message: string }> = [];
  try {
    for (const input of inputs) {
      const ack: Ack = await hub.submit(input.request);
      for (const e of ack.errors) refusals.push({ line: input.line, code: e.code, message: e.message });
      // The tap hands its samples over on the next turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      for (const l of lines.splice(0)) {
        if (!l.startsWith('{"polku_tap"')) outputs.push({ line: input.line, event: JSON.parse(l) as EventJson });
      }
    }
  } finally {
    await hub.drain(5_000);
  }
  return { outputs, refusals };
}

/** One line per difference, naming the event, the input line it came from and the field. */
function compare(expected: ReadonlyArray<Partial<EventJson>>, outputs: readonly Output[]): string[] {
  const problems: string[] = [];
  const n = Math.max(expected.length, outputs.length);
  for (let i = 0; i < n; i++) {
    const want = expected[i];
    const got = outputs[i];
    if (!got) {
      problems.push(`event ${i + 1}: expected ${JSON.stringify(want)}, but the pipeline put out only ${outputs.length} events`);
      continue;
    }
    if (!want) {
      problems.push(`event ${i + 1} (from input line ${got.line}): not expected: ${JSON.stringify(got.event)}`);
      continue;
    }
    const diffs: string[] = [];
    for (const key of Object.keys(want) as Array<keyof EventJson>) {
      if (key === 'metadata') {
        const w = want.metadata ?? {};
        const g = got.event.metadata;
        for (const k of new Set([...Object.keys(w), ...Object.keys(g)])) {
          if (w[k] !== g[k]) diffs.push(`    metadata.${k}: expected ${show(w[k])}, got ${show(g[k])}`);
        }
      } else if (JSON.stringify(want[key]) !== JSON.stringify(got.event[key])) {
        diffs.push(`    ${key}: expected ${show(want[key])}, got ${show(got.event[key])}`);
      }
    }
    if (diffs.length > 0) problems.push([`event ${i + 1} (from input line ${got.line}):`, ...diffs].join('\n'));
  }
  return problems;
}

const show = (v: unknown): string => (v === undefined ? '(none)' : JSON.stringify(v));

/** `polku test` in the command table (it reads its own arguments). */
export const testCommand: Command = ownArgsCommand(
  'test',
  "run a module's ingest and middleware over inputs; compare the output with expected events",
  'MODULE --input INPUTS.ndjson --expect EXPECTED.ndjson',
  (args) => runTest(args),
  TEST_USAGE,
);
