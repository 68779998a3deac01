/**
 * `type: parser` (Fluentd filter_parser, Fluent Bit parser): parses one
 * key's string as JSON, a regex with named groups, or logfmt. As Fluentd,
 * the parsed fields replace the record unless `reserve_data` keeps the
 * record's keys beside them (parsed fields win), and `remove_key_name_field`
 * (with `reserve_data`) drops the parsed key after a successful parse. Unlike
 * Fluentd's default, a value that does not parse (or a missing or non-string
 * key) passes on unchanged and is counted as failed, never dropped.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { parseKey } from '../record-accessor';
import { keyProblem } from '../regex';
import { type CheckContext, type FilterSpec, filterMatch } from '../spec';
import { createParser } from './parser';

export const parserSchema = {
  type: 'object',
  description: "Parses one key's string into fields: JSON, a regex with named groups, or logfmt (Fluentd parser).",
  additionalProperties: false,
  required: ['type', 'key_name', 'format'],
  properties: {
    type: { const: 'parser' },
    match: filterMatch,
    key_name: { type: 'string', minLength: 1, description: 'Key whose string is parsed (`$.a.b` allowed).' },
    format: { enum: ['json', 'regex', 'logfmt'], description: 'How the string is parsed.' },
    pattern: { type: 'string', description: 'With `format: regex`: the regex; its named groups become the fields.' },
    reserve_data: { type: 'boolean', default: false, description: "Keep the record's other keys beside the parsed fields." },
    remove_key_name_field: {
      type: 'boolean',
      default: false,
      description: 'With `reserve_data`: remove `key_name` after a successful parse.',
    },
    hash_value_field: { type: 'string', default: '', description: 'Put the parsed fields under this key instead of the top level.' },
    inject_key_prefix: { type: 'string', default: '', description: 'Prefix added to every parsed field name.' },
  },
} as const;

export type ParserConfig = FromSchema<typeof parserSchema>;

function check(config: ParserConfig, path: string, { regexes }: CheckContext): string[] {
  const problems: string[] = [];
  const k = keyProblem(config.key_name, `${path}.key_name`, parseKey);
  if (k) problems.push(k);
  if (config.format === 'regex') {
    if (config.pattern === undefined) problems.push(`${path}.pattern: format regex needs a pattern`);
    else {
      const p = regexes.add(config.pattern, `${path}.pattern`, true);
      if (p) problems.push(p);
      else if (!/\(\?<[A-Za-z_$][\w$]*>/.test(config.pattern))
        problems.push(`${path}.pattern: has no named group (?<name>...), so it would yield no field`);
    }
  } else if (config.pattern !== undefined) problems.push(`${path}.pattern: only format regex takes a pattern`);
  return problems;
}

export const parserFilter: FilterSpec<ParserConfig> = {
  type: 'parser',
  schema: parserSchema,
  deterministic: true,
  check,
  create: (config) => createParser(config),
};
