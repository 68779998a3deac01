/**
 * Runs encoding jobs on worker threads (sized to the cores the main thread
 * leaves), or inline when `threads` is 0 or the code runs from TypeScript
 * sources (tests). A job's promise always settles: a worker that dies fails
 * its jobs over to the inline path and is replaced; a job that fails inline
 * too rejects, and egress dead-letters its records.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Codes, type EventFilter, type EventFilterModule, type Logger } from '@tributary/core';
import { type EncodeJob, type EncodeResult, runEncodeJob } from './encode-job';
import { loadEventFilter } from './event-filter';

export interface Encoder {
  readonly threads: number;
  /** Resolves with the job's output; the job's buffers may be reused once it is called. */
  encode(job: EncodeJob): Promise<EncodeResult>;
  close(): Promise<void>;
}

/**
 * `auto`: one thread per core beyond the main thread's, at most four, and
 * two from two cores on. With one encoder thread on 2 cores the thread was
 * busy while the main thread idled 70 % (encoding is ~2.5 us of the ~2.8 us
 * of CPU an event costs): a second thread takes that idle time, for
 * 1.4-1.5x the delivered rate at about the RSS one thread had before jobs
 * were bounded (docs/benchmarks.md).
 */
export function encoderThreads(setting: number | 'auto'): number {
  if (setting !== 'auto') return setting;
  const cores = availableParallelism();
  return Math.max(Math.min(2, cores), Math.min(4, cores - 1));
}

/**
 * An encoder thread's young generation (V8's default: 48 MB on 64 bits). Its
 * JS objects live for one job, and what a job outputs is Buffers, off the
 * JS heap: a small nursery holds that, and the default's growth under load
 * was 14-20 MB of the aggregator's RSS (measured in the commit).
 */
const ENCODER_YOUNG_GENERATION_MB = 8;

interface Pending {
  job: EncodeJob;
  resolve(r: EncodeResult): void;
  reject(e: Error): void;
}

class Slot {
  worker: Worker;
  readonly pending = new Map<number, Pending>();

  constructor(
    private readonly file: string,
    private readonly filter: EventFilterModule | undefined,
    private readonly onExit: (slot: Slot, err: Error) => void,
  ) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const w = new Worker(this.file, {
      workerData: { filter: this.filter },
      resourceLimits: { maxYoungGenerationSizeMb: ENCODER_YOUNG_GENERATION_MB },
    });
    w.unref();
    w.on('message', (m: { id: number; result?: EncodeResult; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.result) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    w.on('error', (err) => this.onExit(this, err));
    w.on('exit', (code) => {
      if (code !== 0 || this.pending.size) this.onExit(this, new Error(`encoder thread exited with code ${code}`));
    });
    return w;
  }

  restart(): void {
    this.worker.removeAllListeners();
    this.worker.terminate().catch(() => {}); // it is gone or going; its jobs were failed over
    this.worker = this.spawn();
  }
}

/**
 * `filter` is loaded in every thread (and in this one for the inline path);
 * `workerFile` replaces the worker script (tests inject one that fails).
 */
export function createEncoder(
  threads: number,
  logger: Logger,
  workerFile = join(__dirname, 'encode-worker.js'),
  filter?: EventFilterModule,
): Encoder {
  let inlineFilter: EventFilter | undefined;
  const inline = (job: EncodeJob) => {
    inlineFilter ??= loadEventFilter(filter);
    return runEncodeJob(job, inlineFilter);
  };
  if (threads === 0 || __filename.endsWith('.ts')) {
    return { threads: 0, encode: async (job) => inline(job), close: async () => {} };
  }
  let nextId = 0;
  let closed = false;
  const failOver = (slot: Slot, err: Error) => {
    const jobs = [...slot.pending.values()];
    slot.pending.clear();
    if (closed) {
      for (const p of jobs) p.reject(new Error('the encoder was closed'));
      return;
    }
    logger.error(
      { code: Codes.TRB_EGRESS_ENCODER, err: err.message, jobs: jobs.length },
      `An encoder thread failed (${err.message}); its ${jobs.length} jobs run on the main thread and the thread is replaced.`,
    );
    for (const p of jobs) {
      try {
        p.resolve(inline(p.job));
      } catch (e) {
        p.reject(e as Error);
      }
    }
    slot.restart();
  };
  const slots = Array.from({ length: threads }, () => new Slot(workerFile, filter, failOver));
  return {
    threads,
    encode(job) {
      if (closed) return Promise.reject(new Error('the encoder was closed'));
      const slot = slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
      const id = nextId++;
      return new Promise<EncodeResult>((resolve, reject) => {
        slot.pending.set(id, { job, resolve, reject });
        slot.worker.postMessage({ id, job });
      });
    },
    async close() {
      closed = true;
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
