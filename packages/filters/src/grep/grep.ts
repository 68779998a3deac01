/** The grep filter's logic: the four condition lists of Fluentd's filter_grep, built from the config. */
import { type Path, getPath, getRawPath, parseKey } from '../record-accessor';
import { MAX_REGEX_INPUT, asText, compileRegex } from '../regex';
import type { Filter } from '../spec';
import type { GrepConfig } from './config';

interface Expression {
  path: Path;
  re: RegExp;
}

export function createGrep(config: GrepConfig): Filter {
  const regexpAnd: Expression[] = [];
  const regexpOr: Expression[] = [];
  const excludeAnd: Expression[] = [];
  const excludeOr: Expression[] = [];
  const add = (to: Expression[], list: readonly { key: string; pattern: string }[] | undefined) => {
    for (const r of list ?? []) to.push({ path: parseKey(r.key), re: compileRegex(r.pattern) });
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
  const all = [...regexpAnd, ...regexpOr, ...excludeAnd, ...excludeOr];
  const reads = [...new Set(all.map((e) => String(e.path[0])))];
  const keeps = (hit: (e: Expression) => boolean) =>
    regexpAnd.every(hit) &&
    (regexpOr.length === 0 || regexpOr.some(hit)) &&
    !(excludeAnd.length > 0 && excludeAnd.every(hit)) &&
    !excludeOr.some(hit);
  return {
    reads,
    changes: false,
    apply(event, counts) {
      const r = event.record;
      if (keeps((e) => e.re.test(asText(getPath(r, e.path)).slice(0, MAX_REGEX_INPUT)))) return r;
      counts.dropped++;
      return null;
    },
    applyRaw(record, _event, counts) {
      if (keeps((e) => e.re.test(asText(getRawPath(record, e.path)).slice(0, MAX_REGEX_INPUT)))) return true;
      counts.dropped++;
      return false;
    },
  };
}
