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
 * recheck runs in a child process for the check (see `analyse`).
 *
 * The rule: an exponential pattern is refused everywhere. A polynomial one
 * (most log-line regexes with `[^ ]* [^ ]*`) is allowed where a value is only
 * tested (grep, parser), which match at most MAX_REGEX_INPUT characters of
 * a value, so one event costs a bounded time; mask patterns must be linear,
 * since masking only a prefix would let a secret past it through.
 */
import { spawnSync } from 'node:child_process';

/** Characters of a value that grep and parser regexes see (a longer value is cut for matching). */
export const MAX_REGEX_INPUT = 16 * 1024;

/**
 * How long recheck may analyse one pattern before it counts as not shown
 * safe. Wall time: the Apache regex of Fluentd's docs took over 2 s on a
 * loaded 2-core machine, where 2 s refused a config that starts on a quiet
 * one. Only patterns recheck finds hard take long; the rest take milliseconds.
 */
const CHECK_TIMEOUT_MS = 10_000;

/** A config regex as a RegExp (`flags` added to any `(?i)`). Throws on a syntax error. */
export function compileRegex(pattern: string, flags = ''): RegExp {
  if (pattern.startsWith('(?i)')) return new RegExp(pattern.slice(4), `${flags}i`);
  return new RegExp(pattern, flags);
}

/** A config regex to analyse, and where the config has it. */
export interface RegexUse {
  pattern: string;
  where: string;
  allowPolynomial: boolean;
}

/**
 * Collects a filter list's regexes: `add` reports a syntax error at once;
 * `problems` then analyses every pattern that compiled, all in one go.
 */
export class RegexChecks {
  private readonly uses: RegexUse[] = [];

  /** The syntax problem of `pattern` at `where`, or null (its analysis is queued). */
  add(pattern: string, where: string, allowPolynomial: boolean): string | null {
    try {
      compileRegex(pattern);
    } catch (err) {
      return `${where}: the regex ${JSON.stringify(pattern)} does not compile (${(err as Error).message})`;
    }
    this.uses.push({ pattern, where, allowPolynomial });
    return null;
  }

  /** The backtracking problems of the patterns added (linear is fine, polynomial where allowed). */
  problems(): string[] {
    const verdicts = analyse(this.uses.map((u) => compileRegex(u.pattern)));
    return this.uses.flatMap((u, i) => {
      const v = verdicts[i];
      if (v.status === 'safe' || (v.status === 'polynomial' && u.allowPolynomial)) return [];
      const quoted = JSON.stringify(u.pattern);
      if (v.status === 'unknown')
        return [`${u.where}: the regex ${quoted} could not be shown free of catastrophic backtracking (${v.detail}); simplify it`];
      const attack = v.detail.length <= 80 ? ` (slow on ${v.detail})` : '';
      return [
        `${u.where}: the regex ${quoted} is prone to catastrophic backtracking, ${v.status} in the input length${attack}; rewrite it without overlapping repetitions`,
      ];
    });
  }
}

type Verdict = { status: 'safe' | 'polynomial' | 'exponential' | 'unknown'; detail: string };

/** Verdicts already known in this process, by flags and source. */
const known = new Map<string, Verdict>();

/**
 * recheck's verdicts on `regexes`, from a short-lived child process: recheck
 * keeps a worker thread and a native agent process alive once used (about
 * 70 MB), which a long-running edge agent must not carry for a check made
 * once at start. One child checks every pattern not seen before.
 */
function analyse(regexes: RegExp[]): Verdict[] {
  const key = (re: RegExp) => `${re.flags}/${re.source}`;
  const todo = [...new Set(regexes.map(key).filter((k) => !known.has(k)))];
  if (todo.length) {
    const input = todo.map((k) => {
      const slash = k.indexOf('/');
      return [k.slice(slash + 1), k.slice(0, slash)];
    });
    const res = spawnSync(process.execPath, ['-e', CHILD, require.resolve('recheck'), String(CHECK_TIMEOUT_MS)], {
      input: JSON.stringify(input),
      encoding: 'utf8',
      timeout: 30_000 + todo.length * CHECK_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    let verdicts: Verdict[] | null = null;
    try {
      verdicts = res.status === 0 ? (JSON.parse(res.stdout) as Verdict[]) : null;
    } catch {
      verdicts = null;
    }
    todo.forEach((k, i) => {
      known.set(
        k,
        verdicts?.[i] ?? {
          status: 'unknown',
          detail: `the checker failed: ${(res.error?.message ?? res.stderr ?? '').trim().slice(0, 200)}`,
        },
      );
    });
  }
  return regexes.map((re) => known.get(key(re)) as Verdict);
}

/** The child's program: argv = [recheck's path, timeout]; stdin = [[source, flags], ...]; stdout = verdicts. */
const CHILD = `
const { checkSync } = require(process.argv[1]);
const timeout = Number(process.argv[2]);
const items = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const out = items.map(([source, flags]) => {
  const d = checkSync(source, flags, { timeout });
  if (d.status === 'safe') return { status: 'safe', detail: '' };
  if (d.status === 'unknown') return { status: 'unknown', detail: d.error.kind };
  return { status: d.complexity.type, detail: d.attack.pattern };
});
process.stdout.write(JSON.stringify(out), () => process.exit(0));
`;

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
