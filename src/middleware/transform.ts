import type { Event } from '../gen/polku/v1/event.js';
import type { Middleware, MiddlewareContext } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface TransformOptions {
  name?: string;
}

/** Every key of {@link TransformOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const TRANSFORM_OPTION_KEYS = optionKeys<TransformOptions>({ name: true });

/**
 * Replaces each event with what `change` returns (it may modify the event in place and return
 * it). A function that throws refuses only that event (`MIDDLEWARE_ERROR`).
 *
 * ```ts
 * transform((e) => { e.metadata['env'] = 'prod'; return e; })
 * ```
 */
export function transform(change: (event: Event) => Event, options: TransformOptions = {}): Middleware {
  checkOptionKeys(`transform "${options.name ?? 'transform'}"`, options, TRANSFORM_OPTION_KEYS);
  return {
    name: options.name ?? 'transform',
    process(events: Event[], ctx: MiddlewareContext): Event[] {
      const out: Event[] = [];
      for (const event of events) {
        try {
          const changed = change(event);
          if (changed) out.push(changed);
          else ctx.drop(event, 'MIDDLEWARE_ERROR', 'transform returned no event');
        } catch (err) {
          ctx.drop(event, 'MIDDLEWARE_ERROR', `transform threw: ${(err as Error).message}`);
        }
      }
      return out;
    },
  };
}
