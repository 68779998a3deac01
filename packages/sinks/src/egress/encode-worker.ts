/**
 * Worker-thread entry of the encoder pool: runs encoding jobs off the main
 * thread. Outputs are copied into buffers of their own and transferred, so
 * no pooled memory crosses threads.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EventFilterModule } from '@tributary/core';
import { type EncodeJob, type EncodeResult, runEncodeJob } from './encode-job';
import { loadEventFilter } from './event-filter';

const filter = loadEventFilter((workerData as { filter?: EventFilterModule } | null)?.filter);

function own(b: Uint8Array, transfer: ArrayBuffer[]): Uint8Array {
  const copy = new Uint8Array(b.length);
  copy.set(b);
  transfer.push(copy.buffer);
  return copy;
}

parentPort?.on('message', (msg: { id: number; job: EncodeJob }) => {
  let result: EncodeResult;
  try {
    result = runEncodeJob(msg.job, filter);
  } catch (err) {
    parentPort?.postMessage({ id: msg.id, error: (err as Error).stack ?? String(err) });
    return;
  }
  const transfer: ArrayBuffer[] = [];
  for (const g of result.groups) {
    g.gzip = g.gzip.map((members) => members.map((m) => own(m, transfer)));
    g.ndjson = g.ndjson.map((p) => own(p, transfer));
  }
  parentPort?.postMessage({ id: msg.id, result }, transfer);
});
