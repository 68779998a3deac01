/**
 * Parsers: one line (or multiline record) of text → a record and, when the
 * line carries one, its event time. Pure. A line that does not parse gives
 * null: the caller keeps it as `{message}` and counts it.
 *
 * The ready-made expressions are Fluent Bit's (conf/parsers.conf), with
 * named groups in JavaScript syntax.
 */
import { EventTime } from '@tributary/forward-protocol';

export interface Parsed {
  record: Record<string, unknown>;
  time?: EventTime;
}

export type Parser = (text: string) => Parsed | null;

export interface ParserOptions {
  type: 'none' | 'json' | 'regex' | 'nginx' | 'apache2' | 'syslog_rfc3164' | 'syslog_rfc5424';
  expression?: string;
  time_key?: string;
  time_format?: string;
  keep_time_key?: boolean;
}

interface Preset {
  expression: RegExp;
  timeFormat: string;
  /** Keys turned into integers when they are one. */
  integers?: readonly string[];
}

const PRESETS: Record<string, Preset> = {
  nginx: {
    expression:
      /^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^"]*)" "(?<agent>[^"]*)")?(?:\s+"?(?<http_x_forwarded_for>[^"]*)"?)?$/,
    timeFormat: '%d/%b/%Y:%H:%M:%S %z',
    integers: ['code', 'size'],
  },
  apache2: {
    expression:
      /^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^"]*)" "(?<agent>[^"]*)")?$/,
    timeFormat: '%d/%b/%Y:%H:%M:%S %z',
    integers: ['code', 'size'],
  },
  syslog_rfc3164: {
    expression:
      /^(?:<(?<pri>[0-9]+)>)?(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[a-zA-Z0-9_/.-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^:]*:)? *(?<message>.*)$/,
    timeFormat: '%b %d %H:%M:%S',
    integers: ['pri'],
  },
  syslog_rfc5424: {
    expression:
      /^<(?<pri>[0-9]{1,5})>1 (?<time>[^ ]+) (?<host>[^ ]+) (?<ident>[^ ]+) (?<pid>[-0-9]+) (?<msgid>[^ ]+) (?<extradata>(?:\[.*?\])+|-)(?: (?<message>.*))?$/,
    timeFormat: 'iso8601',
    integers: ['pri'],
  },
};

/** The parser `options` describe; throws (at start-up) on a bad expression or format. */
export function createParser(options: ParserOptions): Parser {
  if (options.type === 'none') return (text) => ({ record: { message: text } });
  const preset = PRESETS[options.type];
  const timeKey = options.time_key ?? (preset ? 'time' : undefined);
  const readTime = timeKey === undefined ? null : timeReader(options.time_format ?? preset?.timeFormat);
  const keep = options.keep_time_key === true;
  const withTime = (record: Record<string, unknown>): Parsed | null => {
    if (timeKey === undefined || readTime === null || !(timeKey in record)) return { record };
    const time = readTime(record[timeKey]);
    if (time === null) return null;
    if (!keep) delete record[timeKey];
    return { record, time };
  };
  if (options.type === 'json') {
    return (text) => {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return null;
      }
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? withTime(value as Record<string, unknown>) : null;
    };
  }
  let expression: RegExp;
  if (preset) expression = preset.expression;
  else if (options.expression === undefined) throw new Error('parser.type regex needs parser.expression.');
  else expression = new RegExp(options.expression);
  const integers = preset?.integers ?? [];
  return (text) => {
    const groups = expression.exec(text)?.groups;
    if (!groups) return null;
    const record: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(groups)) {
      if (value === undefined) continue;
      record[key] = integers.includes(key) && /^\d+$/.test(value) ? Number(value) : value;
    }
    return withTime(record);
  };
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** Reads a time value written as `format` (see the schema's `time_format`); null when it does not match. */
export function timeReader(format: string | undefined): (value: unknown) => EventTime | null {
  const seconds = (t: number) => (Number.isFinite(t) && t >= 0 && t < 2 ** 32 ? EventTime.fromSeconds(t) : null);
  const iso = (value: unknown) => {
    if (typeof value === 'number') return seconds(value);
    if (typeof value !== 'string') return null;
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) return null;
    const fraction = /\.(\d+)/.exec(value)?.[1];
    const time = EventTime.fromDate(new Date(ms));
    return fraction ? new EventTime(time.seconds, Number(fraction.slice(0, 9).padEnd(9, '0'))) : time;
  };
  if (format === undefined || format === 'iso8601') return iso;
  if (format === 'unix') return (v) => seconds(Number(v));
  if (format === 'unix_ms') {
    return (v) => {
      const ms = Number(v);
      const s = Math.floor(ms / 1000);
      return Number.isFinite(ms) && s >= 0 && s < 2 ** 32 ? new EventTime(s, Math.round((ms - s * 1000) * 1e6)) : null;
    };
  }
  return strptime(format);
}

/** strptime for %Y %y %m %d %e %H %M %S %b %z %L %N %f %%; a missing year is the current one, a missing zone UTC. */
function strptime(format: string): (value: unknown) => EventTime | null {
  const fields: string[] = [];
  let source = '^';
  for (let i = 0; i < format.length; i++) {
    const c = format[i];
    if (c !== '%') {
      source += c === ' ' ? ' +' : c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      continue;
    }
    const d = format[++i];
    const pattern: Record<string, string> = {
      Y: '(\\d{4})',
      y: '(\\d{2})',
      m: '(\\d{1,2})',
      d: '(\\d{1,2})',
      e: ' ?(\\d{1,2})',
      H: '(\\d{1,2})',
      M: '(\\d{2})',
      S: '(\\d{2})',
      b: '([A-Za-z]{3})',
      z: '(Z|[+-]\\d{2}:?\\d{2})',
      L: '(\\d{3})',
      N: '(\\d{1,9})',
      f: '(\\d{1,9})',
    };
    if (d === '%') source += '%';
    else if (pattern[d]) {
      source += pattern[d];
      fields.push(d);
    } else throw new Error(`time_format "${format}": %${d} is not supported.`);
  }
  const re = new RegExp(`${source}$`);
  return (value) => {
    if (typeof value !== 'string') return null;
    const m = re.exec(value);
    if (!m) return null;
    let year = new Date().getUTCFullYear();
    let month = 0;
    let day = 1;
    let hour = 0;
    let minute = 0;
    let second = 0;
    let nanos = 0;
    let offsetMin = 0;
    fields.forEach((f, i) => {
      const v = m[i + 1];
      if (f === 'Y') year = Number(v);
      else if (f === 'y') year = 2000 + Number(v);
      else if (f === 'm') month = Number(v) - 1;
      else if (f === 'd' || f === 'e') day = Number(v);
      else if (f === 'H') hour = Number(v);
      else if (f === 'M') minute = Number(v);
      else if (f === 'S') second = Number(v);
      else if (f === 'b') month = MONTHS.indexOf(v.toLowerCase());
      else if (f === 'L' || f === 'N' || f === 'f') nanos = Number(v.padEnd(9, '0'));
      else if (f === 'z' && v !== 'Z') {
        const digits = v.replace(':', '');
        offsetMin = (v[0] === '-' ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
      }
    });
    if (month < 0) return null;
    const ms = Date.UTC(year, month, day, hour, minute, second) - offsetMin * 60_000;
    if (Number.isNaN(ms) || ms < 0) return null;
    return new EventTime(Math.floor(ms / 1000), nanos);
  };
}
