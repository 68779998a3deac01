/**
 * Regexes written in a config. Each must compile (JavaScript syntax; a
 * leading `(?i)` is read as the `i` flag, as Fluent Bit and Go write it) and
 * is checked for catastrophic backtracking with recheck, which analyses the
 * pattern's automaton and says whether matching can take exponential or
 * polynomial time (with an attack string). We picked it over safe-regex2,
 * whose star-height rule counts `?` as a repetition: it refuses the Apache
 * regex of Fluentd's own parser documentation (`(?: +(?<path>[^ ]*) +\S*)?`)
 * while it cannot see polynomial blow-ups at all.
 *
 * The rule: an exponential pattern is refused everywhere. A polynomial one
 * (most log-line regexes with `[^ ]* [^ ]*`) is allowed where a value is only
 * tested (grep, parser), which match at most MAX_REGEX_INPUT characters of
 * a value, so one event costs a bounded time; mask patterns must be linear,
 * since masking only a prefix would let a secret past it through.
 */
import { checkSync } from 'recheck';

/** Characters of a value that grep and parser regexes see (a longer value is cut for matching). */
export const MAX_REGEX_INPUT = 16 * 1024;

/** How long recheck may analyse one pattern before it counts as not shown safe. */
const CHECK_TIMEOUT_MS = 2000;

/** A config regex as a RegExp (`flags` added to any `(?i)`). Throws on a syntax error. */
export function compileRegex(pattern: string, flags = ''): RegExp {
  if (pattern.startsWith('(?i)')) return new RegExp(pattern.slice(4), `${flags}i`);
  return new RegExp(pattern, flags);
}

/**
 * The problem with a config regex at `where`, or null when it compiles and
 * is safe enough: linear, or polynomial where `allowPolynomial`.
 */
export function regexProblem(pattern: string, where: string, allowPolynomial: boolean): string | null {
  let re: RegExp;
  try {
    re = compileRegex(pattern);
  } catch (err) {
    return `${where}: the regex ${JSON.stringify(pattern)} does not compile (${(err as Error).message})`;
  }
  const d = checkSync(re.source, re.flags, { timeout: CHECK_TIMEOUT_MS });
  if (d.status === 'safe') return null;
  if (d.status === 'unknown') {
    return `${where}: the regex ${JSON.stringify(pattern)} could not be shown free of catastrophic backtracking (${d.error.kind}); simplify it`;
  }
  if (d.complexity.type === 'polynomial' && allowPolynomial) return null;
  const attack = d.attack.pattern.length <= 80 ? ` (slow on ${d.attack.pattern})` : '';
  return `${where}: the regex ${JSON.stringify(pattern)} is prone to catastrophic backtracking, ${d.complexity.type} in the input length${attack}; rewrite it without overlapping repetitions`;
}

/** The problem with a record accessor key at `where`, or null. */
export function keyProblem(key: string, where: string, parse: (k: string) => unknown): string | null {
  try {
    parse(key);
    return null;
  } catch (err) {
    return `${where}: ${(err as Error).message}`;
  }
}

/** A config value as text for matching, as Fluentd's `to_s`: a missing key is "", a map or array its JSON. */
export function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !(value instanceof Uint8Array))
    return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  return String(value);
}
