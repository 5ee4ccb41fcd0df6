import { GrpcEmitter } from '../emit/grpc.js';
import { polkuError } from '../errors.js';
import type { HubBuilder } from '../hub/builder.js';
import type { ForwardSettings } from './env.js';

/** The name of the emitter POLKU_EMIT_GRPC_ENDPOINTS adds: the name `route_to` uses for it. */
export const FORWARD_EMITTER_NAME = 'grpc';

/**
 * Adds upstream POLKU's forwarding (POLKU_EMIT_GRPC_ENDPOINTS, POLKU_EMIT_GRPC_LAZY) to the
 * pipeline `polku serve` runs, the embedded default or a module's: a default {@link GrpcEmitter}
 * named `grpc`, so every event with an empty `route_to` is forwarded besides going to the
 * pipeline's own default emitters. A module that has an emitter named `grpc` already is refused:
 * two emitters would answer to one name.
 */
export function addForwarding(builder: HubBuilder, forward: ForwardSettings | undefined, pipeline: string): void {
  if (!forward) return;
  let existing: string | undefined;
  try {
    existing = builder.definition().emitters.find((e) => e.emitter.name === FORWARD_EMITTER_NAME)?.emitter.constructor.name;
  } catch {
    // A module with no emitter of its own yet: forwarding may be its only one.
  }
  if (existing !== undefined) {
    throw polkuError(
      'POLKU_ERR_PIPELINE_INVALID',
      `POLKU_EMIT_GRPC_ENDPOINTS adds the emitter "${FORWARD_EMITTER_NAME}", and the pipeline ${pipeline} has an emitter ` +
        `named "${FORWARD_EMITTER_NAME}" (${existing}) already: unset POLKU_EMIT_GRPC_ENDPOINTS or give the module's emitter another name`,
    );
  }
  builder.emitter(new GrpcEmitter({ name: FORWARD_EMITTER_NAME, endpoints: forward.endpoints, lazy: forward.lazy }));
}
