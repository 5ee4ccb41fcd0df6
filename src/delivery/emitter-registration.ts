/**
 * How an emitter joins a pipeline, the same whether the builder adds it (`hub().emitter(e, r)`)
 * or it joins a running hub (`hub.addEmitter(e, r)`, a plugin that registered or was discovered).
 */
export interface EmitterRegistration {
  /** Whether events with an empty `route_to` go to this emitter. Default true. */
  default?: boolean;
}

/** The registration's `default`, with its default applied: one place, so both ways agree. */
export function isDefaultEmitter(registration: EmitterRegistration): boolean {
  return registration.default ?? true;
}
