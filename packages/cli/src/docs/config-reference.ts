/**
 * Renders docs/configuration.md from the config schemas themselves, so the
 * reference cannot drift: `pnpm docs:config` writes it, and a test fails when
 * the committed file differs from what the schemas say.
 */
import { aggregatorConfigSpecFor } from '@tributary/aggregator';
import { bufferRegistry } from '@tributary/buffer';
import { dedupeRegistry } from '@tributary/dedupe';
import { filterRegistry } from '@tributary/filters';
import { forwarderSchema } from '@tributary/forwarder';
import { logRegistry } from '@tributary/log';
import { type SinkRegistry, sinkRegistry } from '@tributary/sinks';

interface Schema {
  type?: string | readonly string[];
  enum?: readonly unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  properties?: Record<string, Schema>;
  items?: Schema;
  required?: readonly string[];
}

function typeOf(s: Schema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (s.type === 'array' && s.items) return `list of ${s.items.properties ? 'objects' : typeOf(s.items)}`;
  if (Array.isArray(s.type)) return s.type.join(' \\| ');
  return String(s.type ?? 'any');
}

function limits(s: Schema): string {
  const parts: string[] = [];
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  if (s.minItems !== undefined) parts.push(`at least ${s.minItems}`);
  return parts.join(', ');
}

function rows(schema: Schema, prefix: string, out: string[], skip: readonly string[] = []): void {
  for (const [key, s] of Object.entries(schema.properties ?? {})) {
    if (skip.includes(key)) continue;
    const path = `${prefix}${key}`;
    const required = schema.required?.includes(key) ? ' (required)' : '';
    const def = s.default === undefined ? '' : `\`${JSON.stringify(s.default)}\``;
    const desc = [s.description ?? '', limits(s)].filter(Boolean).join(' ');
    out.push(`| \`${path}\`${required} | ${typeOf(s)} | ${def} | ${desc.replace(/\|/g, '\\|')} |`);
    if (s.properties) rows(s, `${path}.`, out);
    if (s.items?.properties) rows(s.items, `${path}[].`, out);
  }
}

function section(title: string, schema: Schema, intro: string): string {
  const out = [`## ${title}`, '', intro, '', '| key | type | default | description |', '|---|---|---|---|'];
  rows(schema, '', out);
  return out.join('\n');
}

/**
 * One table per type of a registry, from its spec: the keys of `prefix` that
 * type takes besides `skip`. A type chosen by a key (`buffer.type`) is headed
 * with that key, so types of the same name in two registries (a `memory`
 * buffer, an `embedded` log and dedupe store) get headings of their own; a
 * sink type is headed with its name alone.
 */
function typeSections(
  title: string,
  intro: string,
  specs: ReadonlyArray<{ type: string; schema: { description: string } }>,
  prefix: string,
  skip: readonly string[],
  chosenBy?: string,
): string {
  const out = [`## ${title}`, '', intro];
  for (const spec of specs) {
    const keys: string[] = [];
    rows(spec.schema as unknown as Schema, prefix, keys, skip);
    out.push('', `### \`${chosenBy ? `${chosenBy}: ` : ''}${spec.type}\``, '', spec.schema.description, '');
    if (keys.length) out.push('| key | type | default | description |', '|---|---|---|---|', ...keys);
    else out.push('No other keys.');
  }
  return out.join('\n');
}

/** The reference for a set of sink types (the registry's, unless a test registers its own). */
export function renderConfigReference(sinks: SinkRegistry = sinkRegistry): string {
  return `${[
    '# Configuration reference',
    '',
    '<!-- Generated from the config schemas by `pnpm docs:config`; a test fails when this file is stale. Do not edit by hand. -->',
    '',
    "Config files are YAML. Unknown keys and bad values are rejected at start-up with the key's path; `tributary check-config FILE --role forwarder|aggregator` explains every problem without starting anything. Durations are milliseconds (`_ms`), sizes bytes (`_bytes`).",
    '',
    section(
      'Forwarder (`tributary forwarder --config FILE`)',
      forwarderSchema as unknown as Schema,
      'The edge agent: forward and HTTP inputs, filters, buffer, delivery to aggregators. The keys of each buffer type are listed under "Buffer types", those of each filter type under "Filter types".',
    ),
    '',
    typeSections(
      'Buffer types',
      "`buffer.type` picks the forwarder's buffer (default `disk`); its other keys are those of its type, below. A key of another type is rejected.",
      bufferRegistry,
      'buffer.',
      ['type'],
      'buffer.type',
    ),
    '',
    typeSections(
      'Filter types',
      'Every `filters[]` item (forwarder and aggregator) has a `type` and a `match` tag pattern; its other keys are those of its type, below. A key of another type is rejected. Regexes are checked for catastrophic backtracking (exponential refused everywhere, polynomial refused in `mask`). The aggregator takes only `grep`, `record`, `parser` and `mask` (deterministic, as egress replays need).',
      filterRegistry,
      'filters[].',
      ['type'],
    ),
    '',
    section(
      'Aggregator (`tributary aggregator --config FILE`)',
      aggregatorConfigSpecFor(sinks).schema as unknown as Schema,
      'The middle tier: forward input, dedupe, durable log, egress to sinks. The keys of each log, dedupe and sink type are listed under "Log types", "Dedupe types" and "Sink types".',
    ),
    '',
    typeSections(
      'Log types',
      '`log.type` picks the durable log (default `embedded`); its other keys are those of its type, below. A key of another type is rejected.',
      logRegistry,
      'log.',
      ['type'],
      'log.type',
    ),
    '',
    typeSections(
      'Dedupe types',
      '`dedupe.type` picks the dedupe store (default `embedded`); its other keys are those of its type, below. A key of another type is rejected.',
      dedupeRegistry,
      'dedupe.',
      ['type'],
      'dedupe.type',
    ),
    '',
    typeSections(
      'Sink types',
      'Every `sinks[]` item has a `name` and a `type`; its other keys are those of its type, below. A key of another type is rejected.',
      sinks,
      'sinks[].',
      ['name', 'type'],
    ),
  ].join('\n')}\n`;
}
