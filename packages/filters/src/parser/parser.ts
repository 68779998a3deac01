/** The parser filter's logic. */
import { deletePath, getPath, parseKey } from '../record-accessor';
import type { Filter } from '../spec';
import type { ParserConfig } from './config';
import { type Fields, parseJson, parseLogfmt, regexParser } from './formats';

export function createParser(config: ParserConfig): Filter {
  const path = parseKey(config.key_name);
  const parse = config.format === 'json' ? parseJson : config.format === 'logfmt' ? parseLogfmt : regexParser(config.pattern as string);
  const prefix = config.inject_key_prefix ?? '';
  const under = config.hash_value_field ?? '';
  return {
    changes: true,
    apply(event, counts) {
      const r = event.record;
      const value = getPath(r, path);
      const fields = typeof value === 'string' ? parse(value) : null;
      if (!fields) {
        counts.failed++;
        return r;
      }
      let parsed: Fields = fields;
      if (prefix) parsed = Object.fromEntries(Object.entries(fields).map(([k, v]) => [`${prefix}${k}`, v]));
      if (under) parsed = { [under]: parsed };
      if (!config.reserve_data) return parsed;
      if (config.remove_key_name_field) deletePath(r, path);
      return Object.assign(r, parsed);
    },
  };
}
