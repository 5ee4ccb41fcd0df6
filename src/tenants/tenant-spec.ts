import { polkuError } from '../errors.js';
import { parseKeySpec, type KeyDigest } from './api-key.js';

/**
 * One tenant as the pipeline module (`.tenants([...])`) or POLKU_TENANTS_FILE declares it:
 *
 * ```json
 * {"name":"web","apiKeys":["sha256:<hex>"],"sources":["web"],"rate":500,"burst":1000,"bufferShare":0.25}
 * ```
 */
export interface TenantSpec {
  /** Labels the tenant's metrics and is written to each accepted event as metadata `polku.tenant`. */
  readonly name: string;
  /** `sha256:<64 hex>` digests of the keys (`polku tenants hash-key`); a plain key works, with a warning. */
  readonly apiKeys: readonly string[];
  /** Sources the tenant may send; `"*"` allows any. */
  readonly sources: readonly string[];
  /** Events per second the tenant may send (its token bucket's refill rate). */
  readonly rate: number;
  /** Events the tenant may send at once; default `rate` (at least 1). */
  readonly burst?: number;
  /**
   * The fraction of the buffer (events and bytes) the tenant's undelivered events may hold,
   * in (0, 1]; default an equal share, 1 / the number of tenants.
   */
  readonly bufferShare?: number;
  /** Its own route: events of this tenant with no `route_to` go to these emitters. */
  readonly emitters?: readonly string[];
}

/** A spec, checked and with its defaults filled in. */
export interface CheckedTenant {
  readonly name: string;
  readonly keys: readonly KeyDigest[];
  /** null: any source. */
  readonly sources: ReadonlySet<string> | null;
  readonly sourceList: readonly string[];
  readonly rate: number;
  readonly burst: number;
  readonly bufferShare: number;
  readonly emitters: readonly string[] | undefined;
}

const FIELDS = new Set(['name', 'apiKeys', 'sources', 'rate', 'burst', 'bufferShare', 'emitters']);
/** Names label metrics: short, printable, and never `_`-prefixed (`_other` is the gateway's). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const ANY_SOURCE = '*';

/**
 * Checks a tenant table. Every problem names where it is (`where`: the file or the module), the
 * tenant (by index and name) and the field, and throws POLKU_ERR_TENANTS_INVALID. A key may belong
 * to one tenant only: the key decides the tenant.
 */
export function checkTenants(specs: unknown, where: string): CheckedTenant[] {
  const fail = (message: string): never => {
    throw polkuError('POLKU_ERR_TENANTS_INVALID', `${where}: ${message}`);
  };
  if (!Array.isArray(specs)) return fail(`tenants must be an array, got ${typeName(specs)}`);
  if (specs.length === 0) return fail('tenants is empty: declare at least one tenant, or none at all (no tenants: no keys needed)');
  const names = new Set<string>();
  const keyOwners = new Map<string, string>();
  const out: CheckedTenant[] = [];
  const equalShare = 1 / specs.length;
  specs.forEach((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`tenants[${i}] must be an object, got ${typeName(raw)}`);
    const spec = raw as Record<string, unknown>;
    const nameValue = spec['name'];
    const at = typeof nameValue === 'string' ? `tenants[${i}] "${nameValue}"` : `tenants[${i}]`;
    const bad = (field: string, message: string): never => fail(`${at}: ${field} ${message}`);
    for (const field of Object.keys(spec)) {
      if (!FIELDS.has(field)) bad(field, `is not a tenant field (fields: ${[...FIELDS].join(', ')})`);
    }
    if (typeof nameValue !== 'string' || !NAME.test(nameValue)) {
      bad('name', `must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit; got ${JSON.stringify(nameValue)}`);
    }
    const name = nameValue as string;
    if (names.has(name)) bad('name', 'is declared twice');
    names.add(name);

    const keyList = stringList(spec['apiKeys'], (m) => bad('apiKeys', m));
    const keys = keyList.map((k, j) => {
      const parsed = parseKeySpec(k);
      if (typeof parsed === 'string') return bad(`apiKeys[${j}]`, parsed);
      const owner = keyOwners.get(parsed.hex);
      if (owner !== undefined) bad(`apiKeys[${j}]`, `is also a key of tenant "${owner}": a key decides its tenant, so it may have one`);
      keyOwners.set(parsed.hex, name);
      return parsed;
    });
    const sourceList = stringList(spec['sources'], (m) => bad('sources', m));
    const rate = spec['rate'];
    if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0)
      bad('rate', `must be a positive number (events/s), got ${show(rate)}`);
    const burstValue = spec['burst'] ?? Math.max(1, rate as number);
    if (typeof burstValue !== 'number' || !Number.isFinite(burstValue) || burstValue < 1) {
      bad('burst', `must be a number of at least 1 (events), got ${show(spec['burst'])}`);
    }
    const shareValue = spec['bufferShare'] ?? equalShare;
    if (typeof shareValue !== 'number' || !(shareValue > 0 && shareValue <= 1)) {
      bad('bufferShare', `must be a fraction of the buffer in (0, 1], got ${show(spec['bufferShare'])}`);
    }
    const emitters = spec['emitters'] === undefined ? undefined : stringList(spec['emitters'], (m) => bad('emitters', m));
    out.push({
      name,
      keys,
      sources: sourceList.includes(ANY_SOURCE) ? null : new Set(sourceList),
      sourceList,
      rate: rate as number,
      burst: burstValue as number,
      bufferShare: shareValue as number,
      emitters,
    });
  });
  return out;
}

/** A non-empty array of non-empty, distinct strings. */
function stringList(value: unknown, bad: (message: string) => never): string[] {
  if (!Array.isArray(value)) return bad(`must be a non-empty array of strings, got ${typeName(value)}`);
  if (value.length === 0) return bad('must not be empty');
  const seen = new Set<string>();
  value.forEach((v: unknown, i) => {
    if (typeof v !== 'string' || v === '') bad(`[${i}] must be a non-empty string, got ${show(v)}`);
    if (seen.has(v as string)) bad(`[${i}] repeats ${JSON.stringify(v)}`);
    seen.add(v as string);
  });
  return value as string[];
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** A value for a message: numbers and short strings as they are, never a key's text. */
function show(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return typeName(v);
}
