/**
 * `type: record` (Fluentd record_transformer, Fluent Bit modify,
 * record_modifier and nest): changes keys, in this order: `keep`, `rename`,
 * `set`, `remove`, `nest`, `lift`.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { parseKey } from '../record-accessor';
import { keyProblem } from '../regex';
import { type CheckContext, type FilterSpec, filterMatch } from '../spec';
import { createRecord, templateProblems } from './record';

const keyList = (what: string) => ({ type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: what }) as const;

export const recordSchema = {
  type: 'object',
  description: 'Sets, renames, removes, keeps, nests and lifts record keys (Fluentd record_transformer, Fluent Bit modify and nest).',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'record' },
    match: filterMatch,
    keep: keyList('Top-level keys to keep; every other key is removed (none listed: all are kept).'),
    rename: {
      type: 'object',
      additionalProperties: { type: 'string', minLength: 1 },
      default: {},
      description: 'Old key: new key (`$.a.b` allowed on both sides). A missing old key is skipped.',
    },
    set: {
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
      description:
        'Key (`$.a.b` allowed): value. Placeholders: `${hostname}`, `${tag}`, `${tag_parts[N]}` (negative N counts from the end), `${time}` (RFC 3339), `${record["key"]}`, `${env.NAME}` (read at start; an unset variable is a config error).',
    },
    remove: keyList('Keys to remove (`$.a.b` allowed).'),
    nest: {
      type: 'object',
      additionalProperties: false,
      required: ['keys', 'under'],
      description: 'Moves top-level keys into a map (Fluent Bit nest, operation nest).',
      properties: {
        keys: keyList('Keys to move; a trailing `*` matches a prefix (`Mem.*`).'),
        under: { type: 'string', minLength: 1, description: 'Key of the map they move into.' },
        remove_prefix: { type: 'string', default: '', description: 'Prefix cut from the moved keys.' },
      },
    },
    lift: {
      type: 'object',
      additionalProperties: false,
      required: ['from'],
      description: "Moves a map's keys to the top level (Fluent Bit nest, operation lift).",
      properties: {
        from: { type: 'string', minLength: 1, description: 'Key of the map to lift.' },
        add_prefix: { type: 'string', default: '', description: 'Prefix added to the lifted keys.' },
      },
    },
  },
} as const;

export type RecordConfig = FromSchema<typeof recordSchema>;

function check(config: RecordConfig, path: string, { env }: CheckContext): string[] {
  const problems: string[] = [];
  const key = (k: string, where: string) => {
    const p = keyProblem(k, where, parseKey);
    if (p) problems.push(p);
  };
  for (const [from, to] of Object.entries(config.rename ?? {})) {
    key(from, `${path}.rename`);
    key(to, `${path}.rename.${from}`);
  }
  for (const [k, template] of Object.entries(config.set ?? {})) {
    key(k, `${path}.set`);
    problems.push(...templateProblems(template, env).map((p) => `${path}.set.${k}: ${p}`));
  }
  (config.remove ?? []).forEach((k, i) => key(k, `${path}.remove[${i}]`));
  return problems;
}

export const recordFilter: FilterSpec<RecordConfig> = {
  type: 'record',
  schema: recordSchema,
  deterministic: true,
  check,
  create: (config, ctx) => createRecord(config, ctx),
};
