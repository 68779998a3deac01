/** The grep filter's logic: the four condition lists of Fluentd's filter_grep, built from the config. */
import { type Path, getPath, parseKey } from '../record-accessor';
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
  return {
    reads,
    changes: false,
    apply(event, counts) {
      const r = event.record;
      const hit = (e: Expression) => e.re.test(asText(getPath(r, e.path)).slice(0, MAX_REGEX_INPUT));
      const keep =
        regexpAnd.every(hit) &&
        (regexpOr.length === 0 || regexpOr.some(hit)) &&
        !(excludeAnd.length > 0 && excludeAnd.every(hit)) &&
        !excludeOr.some(hit);
      if (keep) return r;
      counts.dropped++;
      return null;
    },
  };
}
