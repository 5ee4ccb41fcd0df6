import { polkuError } from '../errors.js';
import { didYouMean } from './did-you-mean.js';

/**
 * Every key of an options type, each `true`: the compiler refuses a listing that misses a key of
 * `T` (a new option added to the interface but not here) or names one `T` does not have.
 */
export type OptionKeySet<T> = { readonly [K in keyof Required<T>]-?: true };

/**
 * The known keys of an options type at run time, where the type is erased. Written next to the
 * interface, `optionKeys<XOptions>({ a: true, b: true })` cannot drift from it: see
 * {@link OptionKeySet}.
 */
export function optionKeys<T extends object>(keys: OptionKeySet<T>): readonly string[] {
  return Object.freeze(Object.keys(keys));
}

/**
 * Refuses option keys a component does not know: a misspelt option (`capacit`) would otherwise
 * be ignored without a word, in a JavaScript module or past a cast. Throws
 * POLKU_ERR_OPTION_INVALID naming the key, the nearest known one, and the component. `at` is the
 * path of a nested options object (`tls.`), shown before the key.
 */
export function checkOptionKeys(component: string, options: object | undefined, known: readonly string[], at = ''): void {
  if (options === undefined || options === null || typeof options !== 'object') return;
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = didYouMean(key, known);
    throw polkuError(
      'POLKU_ERR_OPTION_INVALID',
      `${component}: unknown option "${at}${key}"${near ? `: did you mean "${at}${near}"?` : ''} (known: ${known.map((k) => at + k).join(', ')})`,
    );
  }
}
