/**
 * Egress: reads the durable log, routes each record by tag to its sinks, and
 * commits the read position only after every routed sink confirmed the batch.
 * A crash replays from the last commit; sinks make that replay harmless where
 * the destination allows it.
 *
 * A batch is cut at `batchRecords` records or when the log has nothing more
 * within `maxWaitMs`. A sink's retryable failure retries the same batch with
 * backoff (forever: the log holds the backlog); records no route matches are
 * counted and committed.
 */
import { type Logger, backoffDelay } from '@tributary/core';
import type { LogReader, StoredRecord } from '../log/durable-log';
import type { Sink } from '../sinks/sink';
import { compileTagPattern } from './route';

export interface Route {
  match: string;
  sinks: Sink[];
}

export interface EgressMetrics {
  eventsOut(sink: string, n: number): void;
  sinkFailure(sink: string): void;
  unrouted(n: number): void;
  committed(offset: number): void;
}

export interface EgressOptions {
  reader: LogReader;
  routes: Route[];
  batchRecords: number;
  maxWaitMs: number;
  backoff: { initialMs: number; maxMs: number };
  logger: Logger;
  metrics: EgressMetrics;
}

export class EgressWorker {
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly matchers: Array<{ test: (tag: string) => boolean; sinks: Sink[] }>;

  constructor(private readonly options: EgressOptions) {
    this.matchers = options.routes.map((r) => ({ test: compileTagPattern(r.match), sinks: r.sinks }));
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the batch in progress (bounded by `graceMs`); uncommitted records replay on the next start. */
  async stop(graceMs: number): Promise<void> {
    this.running = false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.loop,
      new Promise((r) => {
        timer = setTimeout(r, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    const { reader, batchRecords, maxWaitMs } = this.options;
    while (this.running) {
      const batch = await reader.poll(batchRecords, maxWaitMs);
      if (batch.length === 0) continue;
      try {
        await this.deliver(batch);
      } catch {
        return; // stopped while a sink was still refusing: the batch stays uncommitted and replays
      }
      await reader.commit(batch);
      this.options.metrics.committed(batch[batch.length - 1].offset);
    }
  }

  private async deliver(batch: StoredRecord[]): Promise<void> {
    const perSink = new Map<Sink, StoredRecord[]>();
    let unrouted = 0;
    for (const r of batch) {
      let routed = false;
      for (const m of this.matchers) {
        if (!m.test(r.tag)) continue;
        routed = true;
        for (const s of m.sinks) {
          const list = perSink.get(s);
          if (list) list.push(r);
          else perSink.set(s, [r]);
        }
        break;
      }
      if (!routed) unrouted += r.count;
    }
    if (unrouted) this.options.metrics.unrouted(unrouted);
    await Promise.all([...perSink].map(([sink, records]) => this.deliverTo(sink, records)));
  }

  private async deliverTo(sink: Sink, records: StoredRecord[]): Promise<void> {
    const events = records.reduce((n, r) => n + r.count, 0);
    for (let attempt = 0; ; attempt++) {
      try {
        await sink.consume(records);
        this.options.metrics.eventsOut(sink.name, events);
        return;
      } catch (err) {
        this.options.metrics.sinkFailure(sink.name);
        this.options.logger.warn(
          { code: (err as { code?: string }).code ?? 'TRB_SINK_ERROR', sink: sink.name, attempt },
          `Sink ${sink.name} did not accept a batch of ${events} events (attempt ${attempt + 1}): ${(err as Error).message}`,
        );
        if (!this.running) throw err;
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, this.options.backoff)));
      }
    }
  }
}
