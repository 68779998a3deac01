/** The string formats of the parser filter; each returns the fields, or null when the text is not in its format. */
import { MAX_REGEX_INPUT, compileRegex } from '../regex';

export type Fields = Record<string, unknown>;

export function parseJson(text: string): Fields | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Fields) : null;
}

/** Named groups of the first match; a group that did not take part is left out (Fluentd leaves it out too). */
export function regexParser(pattern: string): (text: string) => Fields | null {
  const re = compileRegex(pattern);
  return (text) => {
    const m = re.exec(text.slice(0, MAX_REGEX_INPUT));
    if (!m?.groups) return null;
    const out: Fields = {};
    for (const [k, v] of Object.entries(m.groups)) if (v !== undefined) out[k] = v;
    return out;
  };
}

/**
 * logfmt: `key=value` pairs separated by spaces; a value may be quoted with
 * `"` and backslash escapes; a bare key is `true` (as Vector's
 * parse_logfmt). Values stay strings. Text with no pair, or an unterminated
 * quote, is not logfmt.
 */
export function parseLogfmt(text: string): Fields | null {
  const out: Fields = {};
  let i = 0;
  let pairs = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text[i] === ' ') i++;
    if (i >= n) break;
    let k = i;
    while (k < n && text[k] !== '=' && text[k] !== ' ') k++;
    const key = text.slice(i, k);
    if (!key || key.includes('"')) return null;
    if (k >= n || text[k] === ' ') {
      out[key] = true;
      i = k;
      pairs++;
      continue;
    }
    i = k + 1;
    if (text[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= n) return null;
        const c = text[i];
        if (c === '"') break;
        if (c === '\\' && i + 1 < n) {
          const e = text[i + 1];
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
          i += 2;
        } else {
          v += c;
          i++;
        }
      }
      out[key] = v;
      i++;
    } else {
      let e = i;
      while (e < n && text[e] !== ' ') e++;
      out[key] = text.slice(i, e);
      i = e;
    }
    pairs++;
  }
  return pairs ? out : null;
}
