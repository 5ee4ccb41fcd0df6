/**
 * A strict JSON (RFC 8259) scanner over bytes: one pass that validates grammar and UTF-8, tracks
 * nesting depth and finds where a value ends, without building the value. The JSON ingestor
 * materialises only the members it needs from the byte ranges it reports, so a message can be
 * counted and bounded before anything is built, and numbers and nested values keep their text.
 */

/** Why a value was refused. */
export type ScanFault = 'syntax' | 'utf8' | 'depth' | 'capped';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;

export const isJsonSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

/** An escape character after a backslash that RFC 8259 allows: " \ / b f n r t u. */
const ESCAPES = new Uint8Array(256);
for (const c of '"\\/bfnrtu') ESCAPES[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

/**
 * Scans values in one byte array. Not reentrant: the member ranges of the last root object
 * scanned live in `members` until the next scan.
 */
export class JsonScanner {
  /** Why the last scan failed, and where (a byte index). */
  fault: ScanFault = 'syntax';
  faultAt = 0;
  faultDetail = '';
  /**
   * The root object's members, six numbers each: key start and end (the quotes included),
   * whether the key has escapes (1/0), value start and end, whether the value (a string) has
   * escapes (1/0). Filled by `value(..., collect=true)`; a repeated key appears twice.
   */
  readonly members: number[] = [];
  /** Whether the last string scanned had a backslash escape. */
  lastStringEscaped = false;
  private limit = 0;
  private maxDepth = 0;
  private maxMembers = Infinity;

  constructor(private readonly b: Uint8Array) {}

  /**
   * Validates one JSON value starting at `pos` (no leading whitespace) and ending before `limit`.
   * Returns the index just after it, or -1 with `fault`, `faultAt` and `faultDetail` set. With
   * `collect`, the root object's members are recorded in `members`; with `maxMembers` too, the
   * scan stops (fault `capped`) once that many are recorded.
   */
  value(pos: number, limit: number, maxDepth: number, collect = false, maxMembers = Infinity): number {
    this.limit = limit;
    this.maxDepth = maxDepth;
    this.maxMembers = maxMembers * 6;
    this.members.length = 0;
    try {
      return this.any(pos, 1, collect);
    } catch (err) {
      // A depth limit set far beyond the default can exhaust the stack: that value is too deep.
      if (err instanceof RangeError) return this.fail('depth', pos, `nesting exhausted the stack`);
      throw err;
    }
  }

  /**
   * Finds the end of the value starting at `pos` without validating it: brackets and strings
   * only. Used to step over a value already refused (too deep, too large, invalid) inside an
   * array. Returns -1 if it never ends before `limit`.
   */
  skip(pos: number, limit: number): number {
    const b = this.b;
    let depth = 0;
    let i = pos;
    while (i < limit) {
      const c = b[i]!;
      if (c === QUOTE) {
        i = this.skipString(i, limit);
        if (i < 0) return -1;
        if (depth === 0) return i;
        continue;
      }
      if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++;
      else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        if (depth === 0) return i;
        depth--;
        if (depth === 0) return i + 1;
      } else if (depth === 0 && (c === COMMA || isJsonSpace(c))) return i;
      i++;
    }
    return depth === 0 ? limit : -1;
  }

  private skipString(pos: number, limit: number): number {
    const b = this.b;
    let i = pos + 1;
    while (i < limit) {
      const c = b[i]!;
      if (c === BACKSLASH) i += 2;
      else if (c === QUOTE) return i + 1;
      else i++;
    }
    return -1;
  }

  private fail(fault: ScanFault, at: number, detail: string): number {
    this.fault = fault;
    this.faultAt = at;
    this.faultDetail = detail;
    return -1;
  }

  private unexpected(at: number, wanted: string): number {
    if (at >= this.limit) return this.fail('syntax', at, `unexpected end of JSON, wanted ${wanted}`);
    const c = this.b[at]!;
    const shown = c >= 0x21 && c < 0x7f ? `"${String.fromCharCode(c)}"` : `byte 0x${c.toString(16).padStart(2, '0')}`;
    return this.fail('syntax', at, `unexpected ${shown}, wanted ${wanted}`);
  }

  private ws(i: number): number {
    const b = this.b;
    while (i < this.limit && isJsonSpace(b[i])) i++;
    return i;
  }

  private any(i: number, depth: number, collect: boolean): number {
    if (i >= this.limit) return this.unexpected(i, 'a value');
    const c = this.b[i]!;
    if (c === QUOTE) return this.string(i);
    this.lastStringEscaped = false;
    if (c === OPEN_OBJECT) return this.object(i, depth, collect);
    if (c === OPEN_ARRAY) return this.array(i, depth);
    if (c === MINUS || isDigit(c)) return this.number(i);
    if (c === 0x74) return this.literal(i, 'true');
    if (c === 0x66) return this.literal(i, 'false');
    if (c === 0x6e) return this.literal(i, 'null');
    return this.unexpected(i, 'a value');
  }

  private literal(i: number, word: string): number {
    for (let k = 0; k < word.length; k++) {
      if (this.b[i + k] !== word.charCodeAt(k) || i + k >= this.limit) return this.unexpected(i + k, `"${word}"`);
    }
    return i + word.length;
  }

  private number(i: number): number {
    const b = this.b;
    const limit = this.limit;
    if (b[i] === MINUS) i++;
    if (i >= limit || !isDigit(b[i])) return this.unexpected(i, 'a digit');
    if (b[i] === 0x30) {
      i++;
      if (i < limit && isDigit(b[i])) return this.fail('syntax', i, 'a number has a leading zero');
    } else {
      while (i < limit && isDigit(b[i])) i++;
    }
    if (i < limit && b[i] === 0x2e) {
      i++;
      if (i >= limit || !isDigit(b[i])) return this.unexpected(i, 'a digit after the decimal point');
      while (i < limit && isDigit(b[i])) i++;
    }
    if (i < limit && (b[i] === 0x65 || b[i] === 0x45)) {
      i++;
      if (i < limit && (b[i] === 0x2b || b[i] === MINUS)) i++;
      if (i >= limit || !isDigit(b[i])) return this.unexpected(i, 'a digit in the exponent');
      while (i < limit && isDigit(b[i])) i++;
    }
    return i;
  }

  /** A string: escapes checked, no raw control characters, UTF-8 validated as it goes. */
  private string(start: number): number {
    const b = this.b;
    const limit = this.limit;
    let escaped = false;
    let i = start + 1;
    while (i < limit) {
      const c = b[i]!;
      if (c === QUOTE) {
        this.lastStringEscaped = escaped;
        return i + 1;
      }
      if (c === BACKSLASH) {
        escaped = true;
        const e = b[i + 1];
        if (i + 1 >= limit || e === undefined || ESCAPES[e] !== 1) return this.unexpected(i + 1, 'an escape character');
        if (e === 0x75) {
          for (let k = 2; k < 6; k++) {
            if (i + k >= limit || HEX[b[i + k]!] !== 1) return this.unexpected(i + k, 'a hex digit');
          }
          i += 6;
        } else {
          i += 2;
        }
        continue;
      }
      if (c < 0x20) return this.fail('syntax', i, `control character 0x${c.toString(16).padStart(2, '0')} in a string`);
      if (c < 0x80) {
        i++;
        continue;
      }
      const n = this.utf8(i);
      if (n < 0) return -1;
      i = n;
    }
    return this.unexpected(i, 'the end of the string');
  }

  /** One multi-byte UTF-8 sequence at `i` (Unicode table 3-7): returns the index after it. */
  private utf8(i: number): number {
    const b = this.b;
    const c = b[i]!;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return this.fail('utf8', i, `byte 0x${c.toString(16)} cannot start a UTF-8 character`);
    if (i + need >= this.limit) return this.fail('utf8', this.limit, 'a UTF-8 character is cut short');
    const second = b[i + 1]!;
    if (second < lo || second > hi) return this.fail('utf8', i + 1, 'invalid UTF-8 continuation byte');
    for (let k = 2; k <= need; k++) {
      const x = b[i + k]!;
      if (x < 0x80 || x > 0xbf) return this.fail('utf8', i + k, 'invalid UTF-8 continuation byte');
    }
    return i + need + 1;
  }

  private array(start: number, depth: number): number {
    if (depth > this.maxDepth) return this.fail('depth', start, `nesting deeper than ${this.maxDepth}`);
    let i = this.ws(start + 1);
    if (this.b[i] === CLOSE_ARRAY && i < this.limit) return i + 1;
    for (;;) {
      i = this.any(i, depth + 1, false);
      if (i < 0) return -1;
      i = this.ws(i);
      if (i >= this.limit) return this.unexpected(i, '"," or "]"');
      const c = this.b[i];
      if (c === CLOSE_ARRAY) return i + 1;
      if (c !== COMMA) return this.unexpected(i, '"," or "]"');
      i = this.ws(i + 1);
    }
  }

  private object(start: number, depth: number, collect: boolean): number {
    if (depth > this.maxDepth) return this.fail('depth', start, `nesting deeper than ${this.maxDepth}`);
    const b = this.b;
    let i = this.ws(start + 1);
    if (b[i] === CLOSE_OBJECT && i < this.limit) return i + 1;
    for (;;) {
      if (i >= this.limit || b[i] !== QUOTE) return this.unexpected(i, 'a member name in quotes');
      const keyStart = i;
      i = this.string(i);
      if (i < 0) return -1;
      const keyEnd = i;
      const keyEscaped = this.lastStringEscaped;
      i = this.ws(i);
      if (i >= this.limit || b[i] !== COLON) return this.unexpected(i, '":"');
      i = this.ws(i + 1);
      const valueStart = i;
      i = this.any(i, depth + 1, false);
      if (i < 0) return -1;
      if (collect) {
        this.members.push(keyStart, keyEnd, keyEscaped ? 1 : 0, valueStart, i, this.lastStringEscaped ? 1 : 0);
        if (this.members.length >= this.maxMembers) return this.fail('capped', i, 'enough members');
      }
      i = this.ws(i);
      if (i >= this.limit) return this.unexpected(i, '"," or "}"');
      const c = b[i];
      if (c === CLOSE_OBJECT) return i + 1;
      if (c !== COMMA) return this.unexpected(i, '"," or "}"');
      i = this.ws(i + 1);
    }
  }
}
