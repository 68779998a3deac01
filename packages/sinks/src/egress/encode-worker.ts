/**
 * Worker-thread entry of the encoder pool: runs encoding jobs off the main
 * thread. Outputs are copied into buffers of their own and transferred, so
 * no pooled memory crosses threads.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EventFilterModule } from '@tributary/core';
import { type EncodeJob, type EncodeResult, runEncodeJobAsync } from './encode-job';
import { loadEventFilter } from './encoder-pool';

const filter = loadEventFilter((workerData as { filter?: EventFilterModule } | null)?.filter);

function own(b: Uint8Array, transfer: ArrayBuffer[]): Uint8Array {
  const copy = new Uint8Array(b.length);
  copy.set(b);
  transfer.push(copy.buffer);
  return copy;
}

function reply(id: number, result: EncodeResult): void {
  const transfer: ArrayBuffer[] = [];
  for (const g of result.groups) {
    g.gzip = g.gzip.map((members) => members.map((m) => own(m, transfer)));
    g.ndjson = g.ndjson.map((p) => own(p, transfer));
  }
  parentPort?.postMessage({ id, result }, transfer);
}

// A job waiting for its last parts' compression lets the next job's lines be written meanwhile.
parentPort?.on('message', (msg: { id: number; job: EncodeJob }) => {
  runEncodeJobAsync(msg.job, filter)
    .then((result) => reply(msg.id, result))
    .catch((err: Error) => parentPort?.postMessage({ id: msg.id, error: err.stack ?? String(err) }));
});
