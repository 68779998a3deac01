/**
 * Loads the event filter an encoder runs (egress filters, see
 * @tributary/filters' egress entry), in the calling thread: the main thread
 * for inline encoding, each encoder thread for its own. A file of its own so
 * that encoder threads do not load the encoder pool and what it imports.
 */
import type { EventFilter, EventFilterModule } from '@tributary/core';

/** The event filter `m` describes (loaded in the calling thread), or undefined without one. */
export function loadEventFilter(m: EventFilterModule | undefined): EventFilter | undefined {
  if (!m) return undefined;
  const { createEventFilter } = require(m.module) as { createEventFilter(options: unknown): EventFilter };
  return createEventFilter(m.options);
}
