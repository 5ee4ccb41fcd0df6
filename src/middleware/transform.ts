import type { Event } from '../gen/polku/v1/event.js';
import type { Middleware, MiddlewareContext } from './middleware.js';

export interface TransformOptions {
  name?: string;
}

/**
 * Replaces each event with what `change` returns (it may modify the event in place and return
 * it). A function that throws refuses only that event (`MIDDLEWARE_ERROR`).
 *
 * ```ts
 * transform((e) => { e.metadata['env'] = 'prod'; return e; })
 * ```
 */
export function transform(change: (event: Event) => Event, options: TransformOptions = {}): Middleware {
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
