import type { Event } from '../gen/polku/v1/event.js';
import type { Middleware, MiddlewareContext } from './middleware.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface FilterOptions {
  name?: string;
  /** Text for the FILTERED Ack error; says why events were dropped. */
  reason?: string;
}

/** Every key of {@link FilterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const FILTER_OPTION_KEYS = optionKeys<FilterOptions>({ name: true, reason: true });

/**
 * Keeps the events for which `keep` returns true; the others are refused with `FILTERED`.
 * A predicate that throws refuses only that event (`MIDDLEWARE_ERROR`), not the batch.
 *
 * ```ts
 * filter((e) => e.eventType.startsWith('user.'))
 * ```
 */
export function filter(keep: (event: Event) => boolean, options: FilterOptions = {}): Middleware {
  checkOptionKeys(`filter "${options.name ?? 'filter'}"`, options, FILTER_OPTION_KEYS);
  const reason = options.reason ?? 'dropped by filter';
  return {
    name: options.name ?? 'filter',
    keepsEventsUnchanged: true,
    process(events: Event[], ctx: MiddlewareContext): Event[] {
      const kept: Event[] = [];
      for (const event of events) {
        let ok: boolean;
        try {
          ok = keep(event);
        } catch (err) {
          ctx.drop(event, 'MIDDLEWARE_ERROR', `filter threw: ${(err as Error).message}`);
          continue;
        }
        if (ok) kept.push(event);
        else ctx.drop(event, 'FILTERED', reason);
      }
      return kept;
    },
  };
}
