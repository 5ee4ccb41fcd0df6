/*
 * The members a JSON event is built from, found by their bytes so no key string is made for the
 * members that are stepped over; and the int64 check of a timestamp read digit by digit.
 */

export function int64(ns: bigint): bigint | string {
  return BigInt.asIntN(64, ns) === ns ? ns : 'timestamp does not fit in int64 nanoseconds';
}

/** The members an event is built from; every other member is stepped over. */
export enum Slot {
  id,
  timestamp_unix_ns,
  timestampUnixNs,
  timestamp,
  source,
  event_type,
  eventType,
  type,
  metadata,
  payload,
  payload_base64,
  payloadBase64,
  route_to,
  routeTo,
  severity,
  outcome,
}
export const SLOT_COUNT = 16;
export const SLOTS: ReadonlyMap<string, Slot> = new Map(Object.entries(Slot).filter((e): e is [string, Slot] => typeof e[1] === 'number'));
/** The names by length, as bytes. */
export const SLOTS_BY_LENGTH: Array<Array<[Uint8Array, Slot]> | undefined> = [];
for (const [name, slot] of SLOTS) (SLOTS_BY_LENGTH[name.length] ??= []).push([Buffer.from(name), slot]);
