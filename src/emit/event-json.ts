import { isUtf8 } from 'node:buffer';
import { Outcome, Severity, type Event } from '../gen/polku/v1/event.js';

/** The JSON shape of an event as emitters write it (snake_case, like the proto). */
export interface EventJson {
  id: string;
  /** A string: nanoseconds exceed 2^53 and JSON numbers would lose them. */
  timestamp_unix_ns: string;
  source: string;
  event_type: string;
  metadata: Record<string, string>;
  /** The payload as text when it is valid UTF-8 ... */
  payload?: string;
  /** ... otherwise base64. */
  payload_base64?: string;
  route_to: string[];
  severity: string;
  outcome: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function eventToJson(event: Event): EventJson {
  const json: EventJson = {
    id: event.id,
    timestamp_unix_ns: event.timestampUnixNs.toString(),
    source: event.source,
    event_type: event.eventType,
    metadata: event.metadata,
    route_to: event.routeTo,
    severity: Severity[event.severity] ?? String(event.severity),
    outcome: Outcome[event.outcome] ?? String(event.outcome),
  };
  if (event.payload.length > 0) {
    // Checked first rather than caught: a binary payload (an agent's protobuf) made the fatal
    // decoder throw once per event, and the exception cost more than the rest of the conversion.
    if (isUtf8(event.payload)) json.payload = utf8.decode(event.payload);
    else json.payload_base64 = Buffer.from(event.payload.buffer, event.payload.byteOffset, event.payload.length).toString('base64');
  }
  return json;
}
