/**
 * `type: grep` (Fluentd filter_grep, Fluent Bit grep): keep or drop events by
 * regexes on their values. As Fluentd: every top-level `regexp` must match,
 * any top-level `exclude` drops; an `and` block's regexps must all match, its
 * excludes drop only when all match; an `or` block's regexps need one match,
 * any of its excludes drops. A missing key reads as "" (Ruby's `nil.to_s`).
 */
import type { FromSchema } from 'json-schema-to-ts';
import { parseKey } from '../record-accessor';
import { keyProblem } from '../regex';
import { type CheckContext, type FilterSpec, filterMatch } from '../spec';
import { createGrep } from './grep';

const rule = {
  type: 'object',
  additionalProperties: false,
  required: ['key', 'pattern'],
  properties: {
    key: { type: 'string', minLength: 1, description: 'Record key; `$.a.b` reaches into nested maps.' },
    pattern: { type: 'string', description: 'Regex (JavaScript syntax; a leading `(?i)` ignores case).' },
  },
} as const;

const rules = (what: string) => ({ type: 'array', items: rule, default: [], description: what }) as const;

const block = {
  type: 'object',
  additionalProperties: false,
  properties: {
    regexp: rules('Rules of the block that must match.'),
    exclude: rules('Rules of the block that drop the event.'),
  },
} as const;

export const grepSchema = {
  type: 'object',
  description: 'Keeps or drops events by regexes on their values (Fluentd grep).',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'grep' },
    match: filterMatch,
    regexp: rules('Keep only events where every one of these matches.'),
    exclude: rules('Drop events where any one of these matches.'),
    and: {
      type: 'array',
      items: block,
      default: [],
      description: 'Blocks of either `regexp` rules (all must match) or `exclude` rules (drop when all match).',
    },
    or: {
      type: 'array',
      items: block,
      default: [],
      description: 'Blocks of either `regexp` rules (one must match) or `exclude` rules (drop when one matches).',
    },
  },
} as const;

export type GrepConfig = FromSchema<typeof grepSchema>;

type Rule = { key: string; pattern: string };

function check(config: GrepConfig, path: string, { regexes }: CheckContext): string[] {
  const problems: string[] = [];
  const rulesOf = (list: readonly Rule[] | undefined, where: string) =>
    (list ?? []).forEach((r, i) => {
      const p = keyProblem(r.key, `${where}[${i}].key`, parseKey) ?? regexes.add(r.pattern, `${where}[${i}].pattern`, true);
      if (p) problems.push(p);
    });
  rulesOf(config.regexp, `${path}.regexp`);
  rulesOf(config.exclude, `${path}.exclude`);
  for (const kind of ['and', 'or'] as const) {
    (config[kind] ?? []).forEach((b, i) => {
      const where = `${path}.${kind}[${i}]`;
      if (b.regexp?.length && b.exclude?.length)
        problems.push(`${where}: holds both regexp and exclude rules; write them in two blocks (as Fluentd requires)`);
      rulesOf(b.regexp, `${where}.regexp`);
      rulesOf(b.exclude, `${where}.exclude`);
    });
  }
  return problems;
}

export const grepFilter: FilterSpec<GrepConfig> = {
  type: 'grep',
  schema: grepSchema,
  deterministic: true,
  check,
  create(config) {
    return createGrep(config);
  },
};
