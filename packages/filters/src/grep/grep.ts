import type { RawRecord } from '../raw-record';
/** The grep filter's logic: the four condition lists of Fluentd's filter_grep, built from the config. */
import { type Path, getPath, getRawPath, parseKey } from '../record-accessor';
import { MAX_REGEX_INPUT, asText, compileRegex } from '../regex';
import type { Filter } from '../spec';
import type { GrepConfig } from './config';

interface Expression {
  path: Path;
  re: RegExp;
  /** The last text tested and its result: values repeat (a level, a service), and the regex has no state (no g or y flag). */
  lastText: string | null;
  lastHit: boolean;
}

function test(e: Expression, value: unknown): boolean {
  const t = bounded(asText(value));
  if (t === e.lastText) return e.lastHit;
  e.lastHit = e.re.test(t);
  e.lastText = t;
  return e.lastHit;
}

/** At most MAX_REGEX_INPUT characters of a value are matched. */
const bounded = (t: string) => (t.length > MAX_REGEX_INPUT ? t.slice(0, MAX_REGEX_INPUT) : t);

export function createGrep(config: GrepConfig): Filter {
  const regexpAnd: Expression[] = [];
  const regexpOr: Expression[] = [];
  const excludeAnd: Expression[] = [];
  const excludeOr: Expression[] = [];
  const add = (to: Expression[], list: readonly { key: string; pattern: string }[] | undefined) => {
    for (const r of list ?? []) to.push({ path: parseKey(r.key), re: compileRegex(r.pattern), lastText: null, lastHit: false });
  };
  add(regexpAnd, config.regexp);
  add(excludeOr, config.exclude);
  for (const b of config.and ?? []) {
    add(regexpAnd, b.regexp);
    add(excludeAnd, b.exclude);
  }
  for (const b of config.or ?? []) {
    add(regexpOr, b.regexp);
    add(excludeOr, b.exclude);
  }
  // the record being tested, read by hit / hitRaw: no closure is made per event
  let current: Record<string, unknown> = {};
  let currentRaw: RawRecord | null = null;
  const hit = (e: Expression) => test(e, getPath(current, e.path));
  const hitRaw = (e: Expression) => test(e, getRawPath(currentRaw as RawRecord, e.path));
  const keeps = (hit: (e: Expression) => boolean) =>
    regexpAnd.every(hit) &&
    (regexpOr.length === 0 || regexpOr.some(hit)) &&
    !(excludeAnd.length > 0 && excludeAnd.every(hit)) &&
    !excludeOr.some(hit);
  return {
    changes: false,
    apply(event, counts) {
      current = event.record;
      if (keeps(hit)) return event.record;
      counts.dropped++;
      return null;
    },
    applyRaw(record, _event, counts) {
      currentRaw = record;
      if (keeps(hitRaw)) return true;
      counts.dropped++;
      return false;
    },
  };
}
