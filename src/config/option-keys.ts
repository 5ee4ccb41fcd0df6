import { polkuError } from '../errors.js';
import { didYouMean } from './did-you-mean.js';

/**
 * Refuses option keys a component does not know: a misspelt option (`capacit`) would otherwise
 * be ignored without a word, in a JavaScript module or past a cast. Throws
 * POLKU_ERR_OPTION_INVALID naming the key, the nearest known one, and the component.
 */
export function checkOptionKeys(component: string, options: object | undefined, known: readonly string[]): void {
  if (options === undefined || options === null) return;
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = didYouMean(key, known);
    throw polkuError(
      'POLKU_ERR_OPTION_INVALID',
      `${component}: unknown option "${key}"${near ? `: did you mean "${near}"?` : ''} (known: ${known.join(', ')})`,
    );
  }
}
