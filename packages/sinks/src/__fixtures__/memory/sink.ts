/**
 * Object sink over an in-process map: `stores` holds every store's objects by
 * path, and a store named in `failing` refuses puts as an outage would.
 */
import { Codes, RetryableError } from '@tributary/core';
import type { ObjectSink, SinkObject } from '@tributary/core';

export const stores = new Map<string, Map<string, Buffer>>();
export const failing = new Set<string>();

export class MemorySink implements ObjectSink {
  readonly kind = 'objects' as const;

  constructor(
    readonly name: string,
    private readonly store: string,
    readonly gzipLevel: number,
  ) {}

  async put(objects: SinkObject[]): Promise<void> {
    if (failing.has(this.store)) throw new RetryableError(Codes.TRB_SINK_ERROR, `The memory store ${this.store} is failing.`);
    const store = stores.get(this.store) ?? new Map<string, Buffer>();
    stores.set(this.store, store);
    for (const o of objects) store.set(o.path, Buffer.concat(o.body));
  }

  async close(): Promise<void> {}
}
