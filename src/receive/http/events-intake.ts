import { AckCodes, isAckCode, refusalOf, type AckCode } from '../../errors.js';
import type { Event } from '../../gen/polku/v1/event.js';
import type { Ack, AckError } from '../../gen/polku/v1/gateway.js';
import type { IngestProblem } from '../../ingest/ingestor.js';
import { JsonIngestor } from '../../ingest/json.js';
import { IDEMPOTENCY_KEY, SPAN_ID, TENANT, TRACE_ID } from '../../metadata-keys.js';
import { inflate } from '../http-body.js';
import type { IntakePort } from '../receiver.js';
import type { HttpReceiverMetrics } from './http-metrics.js';
import { HTTP_DEFAULT_SOURCE, HTTP_RETRY_AFTER_SECONDS } from './http-settings.js';
import { parseTraceparent, type TraceContext } from './traceparent.js';

/** How the body is framed, from its Content-Type. */
export type BodyFormat = 'json' | 'ndjson';

const FORMATS: Readonly<Record<string, BodyFormat>> = {
  'application/json': 'json',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
};

/** The media types `POST /v1/events` takes. */
export const EVENT_MEDIA_TYPES = Object.keys(FORMATS);

/** The body format of a media type (`mediaType` in http-body.ts), or undefined: 415. */
export function bodyFormatOf(mediaType: string): BodyFormat | undefined {
  return FORMATS[mediaType];
}

/** One `POST /v1/events`, as read off the wire: framework-free, so any server can hand it in. */
export interface EventsCall {
  readonly format: BodyFormat;
  readonly gzip: boolean;
  /** The body as sent, or 'too-large' when it passed the body limit (and was not kept). */
  readonly body: Buffer | 'too-large';
  /** `X-Polku-Source`: the source of events that name none. */
  readonly source: string | undefined;
  /** `X-API-Key`, as sent. */
  readonly apiKey: string | undefined;
  /** `Idempotency-Key`. */
  readonly idempotencyKey: string | undefined;
  /** `traceparent` (W3C Trace Context). */
  readonly traceparent: string | undefined;
}

/** An answer: status, JSON body, and the seconds of `Retry-After` when the caller should send again. */
export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly retryAfter?: number | undefined;
}

/** One refused event (or, without `index`, the whole request) in an answer's `errors`. */
export interface AnswerError {
  /** The event's place in the body: an array's element or NDJSON's n-th event, from 0. */
  index?: number;
  id?: string;
  code: string;
  message: string;
}

const ADMISSION_PREFIX = /^events\[(\d+)\]: /;
const OPEN_BRACE = 0x7b;

/**
 * The route's work between the bytes and the answer: inflates, parses with the JSON ingestor
 * (POLKU's JSON event format; no second parser), stamps what the headers say on each event, hands
 * the events and the parse problems to the hub in one `submit`, and turns the Ack into the HTTP
 * answer through the status table (`refusalOf`, `AckCodes[code].http`). Every error carries the
 * event's place in the body, so a client resends exactly the ones that can succeed later.
 */
export class EventsIntake {
  private readonly json = new JsonIngestor();

  constructor(
    private readonly hub: IntakePort,
    private readonly metrics: HttpReceiverMetrics,
    private readonly maxBodyBytes: number,
  ) {}

  answer(call: EventsCall): HttpAnswer | Promise<HttpAnswer> {
    const source = call.source || HTTP_DEFAULT_SOURCE;
    const max = this.maxBodyBytes;
    if (call.body === 'too-large') {
      return this.unreadable(call, source, 'BATCH_TOO_LARGE', `body is over ${max} bytes (POLKU_HTTP_MAX_BODY_BYTES)`);
    }
    if (!call.gzip) return this.ingest(call, source, call.body);
    return inflate(call.body, max).then((out) => {
      if (out === 'too-large') {
        return this.unreadable(call, source, 'BATCH_TOO_LARGE', `gzip body inflates past ${max} bytes (POLKU_HTTP_MAX_BODY_BYTES)`);
      }
      if (out instanceof Error) return this.unreadable(call, source, 'INVALID_BATCH', `gzip body is corrupt: ${out.message}`);
      return this.ingest(call, source, out);
    });
  }

  private ingest(call: EventsCall, source: string, body: Buffer): HttpAnswer | Promise<HttpAnswer> {
    const limits = this.hub.limits;
    // JsonIngestor.ingest is synchronous: it is POLKU's own, never a plugin.
    const parsed = this.json.ingest({ source, cluster: '', format: call.format, limits }, body);
    if (parsed.tooLarge !== undefined) return this.unreadable(call, source, 'BATCH_TOO_LARGE', parsed.tooLarge);
    const { events, problems } = parsed;
    const positions = problems.length === 0 ? undefined : positionsOf(events.length, problems);
    this.stamp(call, events, positions, events.length + problems.length === 1 && call.format === 'json' && firstByte(body) === OPEN_BRACE);
    const ack = this.hub.submit({ source, cluster: '', payload: { kind: 'events', events, problems }, unary: true, apiKey: call.apiKey });
    const parseErrors = problems.length;
    if (ack instanceof Promise) return ack.then((a) => answerOf(a, events, positions, problems, parseErrors));
    return answerOf(ack, events, positions, problems, parseErrors);
  }

  /**
   * What the headers say, on every event: its idempotency key (the header's, for one event; with
   * `:<index>` appended in a batch), its trace (when the event carries none of its own). The body
   * never names its tenant: `polku.tenant` is the hub's to set from the API key.
   */
  private stamp(call: EventsCall, events: Event[], positions: Int32Array | undefined, single: boolean): void {
    let trace: TraceContext | undefined;
    if (call.traceparent !== undefined) {
      trace = parseTraceparent(call.traceparent);
      if (!trace) this.metrics.invalidTraceparent.inc();
    }
    const key = call.idempotencyKey;
    for (let k = 0; k < events.length; k++) {
      const md = events[k]!.metadata;
      if (md[TENANT] !== undefined) delete md[TENANT];
      if (key !== undefined) md[IDEMPOTENCY_KEY] = single ? key : `${key}:${positions ? positions[k]! : k}`;
      if (trace && md[TRACE_ID] === undefined) {
        md[TRACE_ID] = trace.traceId;
        md[SPAN_ID] = trace.spanId;
      }
    }
  }

  /** The answer to a message the hub refused whole before its body was read (`refuseBeforeReading`). */
  answerRefused(ack: Ack): HttpAnswer {
    return answerOf(ack, [], undefined, [], 0);
  }

  /** A body that cannot be read at all: counted by the hub (and answered) as one refused message. */
  private unreadable(call: EventsCall, source: string, code: AckCode, message: string): HttpAnswer | Promise<HttpAnswer> {
    const ack = this.hub.submit({ source, cluster: '', payload: { kind: 'unreadable', code, message }, unary: true, apiKey: call.apiKey });
    if (ack instanceof Promise) return ack.then((a) => answerOf(a, [], undefined, [], 0));
    return answerOf(ack, [], undefined, [], 0);
  }
}

function firstByte(body: Buffer): number | undefined {
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    // Spaces, tabs, line ends, and a UTF-8 byte order mark's bytes.
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0xef && b !== 0xbb && b !== 0xbf) return b;
  }
  return undefined;
}

/**
 * Each event's place in the body. The ingestor returns the events and the problems each in body
 * order, and every per-element problem says its index: the events fill the places left.
 */
function positionsOf(eventCount: number, problems: readonly IngestProblem[]): Int32Array {
  const at = new Int32Array(eventCount);
  let p = 0;
  let next = 0;
  for (let k = 0; k < eventCount; k++) {
    while (p < problems.length && (problems[p]!.index === undefined || problems[p]!.index === next)) {
      if (problems[p]!.index !== undefined) next++;
      p++;
    }
    at[k] = next++;
  }
  return at;
}

/**
 * The Ack as the HTTP answer. Through the status table: a request refused whole with a code that
 * fails the call gets that code's status (401, 403, 413, 429, 503…). Otherwise 202 when every
 * event was taken (or decided on: filtered, sampled out, duplicate — statuses 200 in the table);
 * else the status of the refusals: one the caller must fix (400, 413, 422) before one it may
 * retry (429, 503), the highest of its kind. Valid neighbours are accepted all the same, and both
 * lists are in the body.
 */
function answerOf(
  ack: Ack,
  events: readonly Event[],
  positions: Int32Array | undefined,
  problems: readonly IngestProblem[],
  parseErrors: number,
): HttpAnswer {
  const errors: AnswerError[] = [];
  let idPlace: Map<string, number> | undefined;
  const placeOfId = (id: string): number | undefined => {
    if (!idPlace) {
      idPlace = new Map();
      for (let k = 0; k < events.length; k++) {
        if (!idPlace.has(events[k]!.id)) idPlace.set(events[k]!.id, positions ? positions[k]! : k);
      }
    }
    return idPlace.get(id);
  };
  let fix = 0;
  let retry = 0;
  for (let i = 0; i < ack.errors.length; i++) {
    const e = ack.errors[i]!;
    errors.push(errorOf(e, i < parseErrors && e.code === 'PARSE_ERROR' ? problems[i]!.index : undefined, positions, placeOfId));
    const http = isAckCode(e.code) ? AckCodes[e.code].http : 500;
    if (http < 400) continue;
    if (isAckCode(e.code) && AckCodes[e.code].retryable) retry = Math.max(retry, http);
    else fix = Math.max(fix, http);
  }
  const body = JSON.stringify({ accepted: ack.eventIds, errors });
  const refusal = refusalOf(ack);
  if (refusal) return { status: refusal.http, body, retryAfter: refusal.retryable ? HTTP_RETRY_AFTER_SECONDS : undefined };
  if (fix > 0) return { status: fix, body };
  if (retry > 0) return { status: retry, body, retryAfter: HTTP_RETRY_AFTER_SECONDS };
  return { status: 202, body };
}

function errorOf(
  e: AckError,
  parseIndex: number | undefined,
  positions: Int32Array | undefined,
  placeOfId: (id: string) => number | undefined,
): AnswerError {
  let index = parseIndex;
  let message = e.message;
  if (index === undefined) {
    // The hub names an event refused at admission by its place among the events it was given.
    const m = ADMISSION_PREFIX.exec(message);
    if (m) {
      const k = Number(m[1]);
      index = positions ? positions[k] : k;
      message = message.slice(m[0].length);
    } else if (e.eventId !== '') {
      index = placeOfId(e.eventId);
    }
  }
  return {
    ...(index !== undefined ? { index } : {}),
    ...(e.eventId !== '' ? { id: e.eventId } : {}),
    code: e.code,
    message,
  };
}
