/**
 * The module an aggregator's encoder threads load (core's
 * EventFilterModule): each thread builds its own chain from the validated
 * `filters:` list, so egress filters run beside the encoding, off the main
 * thread.
 */
import { hostname } from 'node:os';
import { type EventFilter, silentLogger } from '@tributary/core';
import { createFilterChain } from './chain';
import { type FilterConfig, filterRegistry } from './registry';

export interface EgressFilterOptions {
  filters: FilterConfig[];
}

/** Called by name in each encoder thread; only deterministic filters reach it (the aggregator's config check). */
export function createEventFilter(options: EgressFilterOptions): EventFilter {
  return createFilterChain(options.filters, { hostname: hostname(), env: process.env, logger: silentLogger }, filterRegistry);
}
