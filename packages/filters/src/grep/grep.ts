import type { RawRecord } from '../raw-record';
/** The grep filter's logic: the four condition lists of Fluentd's filter_grep, built from the config. */
import { type Path, getPath, getRawPath, parseKey } from '../record-accessor';
import { MAX_REGEX_INPUT, asText, compileRegex } from '../regex';
import type { Filter } from '../spec';
import type { GrepConfig } from './config';

interface Expression {
  path: Path;
  re: RegExp;
  /** A top-level key (the path's only step) and its UTF-8 bytes: the raw path compares its value's bytes. */
  key: string | null;
  keyBytes: Buffer | null;
  /** The last text tested and its result: values repeat (a level, a service), and the regex has no state (no g or y flag). */
  lastText: string | null;
  lastHit: boolean;
  /** The packed bytes of the value `lastHit` is for (`lastRaw[0, lastRawLength)`), when the raw path read it; else -1. */
  lastRaw: Buffer;
  lastRawLength: number;
}

/** Values of at most this many packed bytes are remembered as bytes. */
const RAW_MEMO_BYTES = 64;

function test(e: Expression, value: unknown): boolean {
  const t = bounded(asText(value));
  if (t === e.lastText) return e.lastHit;
  e.lastHit = e.re.test(t);
  e.lastText = t;
  return e.lastHit;
}

/** `test` on a record kept as bytes: a top-level value packed as the last one tested gives the last result, undecoded. */
function testRaw(e: Expression, record: RawRecord): boolean {
  const at = e.keyBytes ? record.rawValue(e.key as string, e.keyBytes) : -2;
  if (at < 0) {
    e.lastRawLength = -1;
    return test(e, at === -1 ? undefined : getRawPath(record, e.path));
  }
  const end = record.valueEnd;
  const n = end - at;
  const body = record.bytes;
  const last = e.lastRaw;
  if (n === e.lastRawLength) {
    let i = 0;
    while (i < n && body[at + i] === last[i]) i++;
    if (i === n) return e.lastHit;
  }
  const hit = test(e, record.get(e.key as string));
  if (n <= RAW_MEMO_BYTES) {
    for (let i = 0; i < n; i++) last[i] = body[at + i];
    e.lastRawLength = n;
  } else e.lastRawLength = -1;
  return hit;
}

/** At most MAX_REGEX_INPUT characters of a value are matched. */
const bounded = (t: string) => (t.length > MAX_REGEX_INPUT ? t.slice(0, MAX_REGEX_INPUT) : t);

export function createGrep(config: GrepConfig): Filter {
  const regexpAnd: Expression[] = [];
  const regexpOr: Expression[] = [];
  const excludeAnd: Expression[] = [];
  const excludeOr: Expression[] = [];
  const add = (to: Expression[], list: readonly { key: string; pattern: string }[] | undefined) => {
    for (const r of list ?? []) {
      const path = parseKey(r.key);
      const key = path.length === 1 && typeof path[0] === 'string' ? path[0] : null;
      to.push({
        path,
        re: compileRegex(r.pattern),
        key,
        keyBytes: key === null ? null : Buffer.from(key, 'utf8'),
        lastText: null,
        lastHit: false,
        lastRaw: Buffer.alloc(RAW_MEMO_BYTES),
        lastRawLength: -1,
      });
    }
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
  const hit = (e: Expression) => {
    e.lastRawLength = -1;
    return test(e, getPath(current, e.path));
  };
  const hitRaw = (e: Expression) => testRaw(e, currentRaw as RawRecord);
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
