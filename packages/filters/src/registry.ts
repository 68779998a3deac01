/**
 * Every filter type the roles know. The `filters:` schema, the
 * `FilterConfig` type, the checks and the configuration reference derive
 * from this list: adding a filter is its folder and one line here.
 */
import { awsMetadataFilter } from './aws-metadata/config';
import { grepFilter } from './grep/config';
import { maskFilter } from './mask/config';
import { parserFilter } from './parser/config';
import { recordFilter } from './record/config';
import { RegexChecks } from './regex';
import type { FilterSpec } from './spec';
import { throttleFilter } from './throttle/config';

export const filterRegistry = [grepFilter, recordFilter, parserFilter, maskFilter, throttleFilter, awsMetadataFilter] as const;

export type FilterRegistry = readonly FilterSpec[];

/** One filter's config, as validated and defaulted: a union discriminated by `type`. */
export type FilterConfig = (typeof filterRegistry)[number] extends infer S ? (S extends FilterSpec<infer C> ? C : never) : never;

/** The schema of a role's `filters:` list: each item checked against its own type's keys (an ajv discriminator). */
export function filtersSchema(registry: FilterRegistry = filterRegistry) {
  return {
    type: 'array',
    default: [],
    description: 'Filters, run in this order on the events whose tag each one matches; their keys are listed under "Filter types".',
    items: {
      type: 'object',
      required: ['type'],
      properties: { type: { enum: registry.map((s) => s.type), description: 'Kind of filter.' } },
      discriminator: { propertyName: 'type' },
      oneOf: registry.map((s) => s.schema),
    },
  } as const;
}

/**
 * What a schema cannot check in a `filters:` list: every regex compiles and
 * is safe, every key is a valid accessor, every variable named is set. Each
 * problem names the filter and the key (`filters[1].regexp[0].pattern: ...`).
 */
export function checkFilters(
  filters: readonly { type: string }[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  registry: FilterRegistry = filterRegistry,
): string[] {
  const regexes = new RegexChecks();
  const problems = filters.flatMap((f, i) => registry.find((s) => s.type === f.type)?.check?.(f, `filters[${i}]`, { env, regexes }) ?? []);
  return [...problems, ...regexes.problems()];
}

/**
 * The aggregator's extra rule: its filters run at egress, where a replay of
 * the log must write the same objects, so only deterministic types are
 * allowed there (throttle and aws_metadata belong on the forwarder).
 */
export function checkEgressFilters(filters: readonly { type: string }[], registry: FilterRegistry = filterRegistry): string[] {
  return filters.flatMap((f, i) =>
    registry.find((s) => s.type === f.type)?.deterministic === false
      ? [
          `filters[${i}].type: ${f.type} is not deterministic, and aggregator filters run at egress, where a replay must write what the first run wrote; run it on the forwarder`,
        ]
      : [],
  );
}
