/** Runs records through a validated `filters:` list as a role does: msgpack entries in, msgpack entries out. */
import { partConfigSpec, validateConfig } from '@tributary/core';
import { EventTime, decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import pino from 'pino';
import { createFilterChain } from '../chain';
import { type FilterConfig, checkFilters, filterRegistry, filtersSchema } from '../registry';

export const TIME = new EventTime(1_700_000_000, 123_000_000);

export function validFilters(filters: unknown[], env: Record<string, string> = {}): FilterConfig[] {
  const spec = partConfigSpec<{ filters: FilterConfig[] }>('filters', filtersSchema(), (c) => checkFilters(c.filters, env));
  return validateConfig(spec, { filters }).filters as FilterConfig[];
}

export function chainOf(filters: unknown[], env: Record<string, string> = {}) {
  return createFilterChain(validFilters(filters, env), { hostname: 'web001', env, logger: pino({ level: 'silent' }) }, filterRegistry);
}

/** The records kept (null when no filter matched the tag) and each one's original index. */
export function run(filters: unknown[], records: Record<string, unknown>[], tag = 'app.web', env: Record<string, string> = {}) {
  const chain = chainOf(filters, env);
  const entries = Buffer.concat(records.map((r) => encodeEntry(TIME, r)));
  const out = chain.run(tag, entries);
  if (!out) return null;
  return { records: decodeEntries(out.entries).map((e) => e.record), indexes: out.indexes, counts: chain.counts, bytes: out.entries };
}
