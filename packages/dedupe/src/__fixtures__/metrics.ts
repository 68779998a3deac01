/** Dedupe's metrics as real prom-client counters in a registry of their own, so a test reads what a store counted. */
import { Counter, Gauge, Registry } from 'prom-client';
import type { DedupeMetrics } from '../spec';

export function testDedupeMetrics() {
  const registers = [new Registry()];
  const counter = (name: string) => new Counter({ name: `test_dedupe_${name}_total`, help: name, registers });
  return {
    dedupeUnavailable: counter('unavailable'),
    dedupeStateLost: counter('state_lost'),
    dedupeRebuilding: new Gauge({ name: 'test_dedupe_rebuilding', help: 'rebuilding', registers }),
    dedupeRebuildFailures: counter('rebuild_failures'),
    dedupeUnverified: counter('unverified'),
    dedupeDuplicates: counter('duplicates'),
    dedupeStaleClaims: counter('stale_claims'),
  } satisfies DedupeMetrics;
}
