/**
 * `type: mask`: redacts secrets in string values, in every string of the
 * record (nested maps and arrays too) or in listed keys only. Ready-made
 * patterns: `credit_card` (13 to 19 digits, spaces or dashes allowed,
 * masked only when the Luhn check passes), `email`, `aws_access_key`
 * (AKIA/ASIA… ids) and `bearer_token` (the token after `Bearer `). A match
 * is replaced by `replacement`, or with `hmac_key_env` by
 * `hmac:<first 16 hex digits of HMAC-SHA256(key, match)>`, so equal values
 * stay joinable and nothing reversible is written.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { parseKey } from '../record-accessor';
import { keyProblem } from '../regex';
import { type CheckContext, type FilterSpec, filterMatch } from '../spec';
import { BUILTIN_NAMES, createMask } from './mask';

export const maskSchema = {
  type: 'object',
  description: 'Redacts secrets (cards, e-mail addresses, AWS keys, bearer tokens, your regexes) in string values.',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'mask' },
    match: filterMatch,
    keys: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description: 'Keys whose strings (nested ones included) are masked (`$.a.b` allowed); none listed: every string of the record.',
    },
    builtin: {
      type: 'array',
      items: { enum: BUILTIN_NAMES },
      default: ['credit_card', 'email', 'aws_access_key', 'bearer_token'],
      description: 'Ready-made patterns to apply.',
    },
    patterns: {
      type: 'array',
      items: { type: 'string' },
      default: [],
      description: 'Your own regexes; every match is masked.',
    },
    replacement: { type: 'string', default: '[REDACTED]', description: 'What a match becomes.' },
    hmac_key_env: {
      type: 'string',
      minLength: 1,
      description:
        'Environment variable holding an HMAC key: a match becomes `hmac:` and 16 hex digits of HMAC-SHA256 instead of `replacement`.',
    },
  },
} as const;

export type MaskConfig = FromSchema<typeof maskSchema>;

function check(config: MaskConfig, path: string, { env, regexes }: CheckContext): string[] {
  const problems: string[] = [];
  (config.keys ?? []).forEach((k, i) => {
    const p = keyProblem(k, `${path}.keys[${i}]`, parseKey);
    if (p) problems.push(p);
  });
  (config.patterns ?? []).forEach((re, i) => {
    const p = regexes.add(re, `${path}.patterns[${i}]`, false);
    if (p) problems.push(p);
  });
  if (config.hmac_key_env !== undefined && !env[config.hmac_key_env]) {
    problems.push(`${path}.hmac_key_env: the environment variable ${config.hmac_key_env} is not set or empty`);
  }
  if (!config.builtin?.length && !config.patterns?.length)
    problems.push(`${path}: no builtin and no patterns: the filter would mask nothing`);
  return problems;
}

export const maskFilter: FilterSpec<MaskConfig> = {
  type: 'mask',
  schema: maskSchema,
  deterministic: true,
  check,
  create: (config, ctx) => createMask(config, ctx),
};
