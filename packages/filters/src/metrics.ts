/**
 * The filters' metrics, one set per role (`tributary_<role>_filter_*`). The
 * counts live with the chains (in encoder threads at egress), so the
 * counters are read from their totals at scrape time. The `filter` label is
 * the filter's place and type in the config (`0_grep`): bounded by the config.
 */
import { Counter, type Registry } from 'prom-client';
import type { FilterConfig } from './registry';

export interface FilterTotals {
  /** Per configured filter, in config order. */
  dropped: number[];
  failed: number[];
  /** Entries passed on unchanged because they could not be read. */
  unreadable: number;
}

export function emptyTotals(filters: readonly { type: string }[]): FilterTotals {
  return { dropped: filters.map(() => 0), failed: filters.map(() => 0), unreadable: 0 };
}

export const filterLabel = (f: { type: string }, i: number) => `${i}_${f.type}`;

export function registerFilterMetrics(
  registry: Registry,
  role: string,
  filters: readonly FilterConfig[],
  totals: () => FilterTotals,
): void {
  const r = [registry];
  const labels = filters.map(filterLabel);
  new Counter({
    name: `tributary_${role}_filter_dropped_events_total`,
    help: 'Events a filter dropped (grep, throttle), by filter',
    labelNames: ['filter'],
    registers: r,
    collect() {
      this.reset();
      totals().dropped.forEach((n, i) => this.inc({ filter: labels[i] }, n));
    },
  });
  new Counter({
    name: `tributary_${role}_filter_failed_events_total`,
    help: 'Events a filter could not process and passed on unchanged (a value that did not parse), by filter',
    labelNames: ['filter'],
    registers: r,
    collect() {
      this.reset();
      totals().failed.forEach((n, i) => this.inc({ filter: labels[i] }, n));
    },
  });
  new Counter({
    name: `tributary_${role}_filter_unreadable_events_total`,
    help: 'Entries the filters could not decode (an unknown msgpack ext type) and passed on unchanged',
    registers: r,
    collect() {
      this.reset();
      this.inc(totals().unreadable);
    },
  });
}
