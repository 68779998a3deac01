/**
 * A fake kafkajs consumer for the reader's unit tests. It does what kafkajs
 * 2.2.4 does where the reader depends on it:
 *
 * - Fetch position: each partition is fetched from its *resolved* offset,
 *   which only `resolveOffset` moves (offsetManager/index.js resolveOffset,
 *   nextOffset); a new generation starts again from the group's committed
 *   offsets (consumerGroup.js [SYNC] builds a new OffsetManager, whose
 *   resolveOffsets reads them from the coordinator).
 * - Batches: one partition's fetched messages per `eachBatch` call, one call at
 *   a time (runner.js handleBatch → processEachBatch with concurrency 1); an
 *   empty fetch calls no handler, only `heartbeat()` (runner.js fetch and
 *   handleBatch's isEmpty branch); after each batch, `heartbeat()`. With
 *   `eachBatchAutoResolve: false` nothing is resolved for the handler, so a
 *   batch it did not resolve is fetched again.
 * - Rebalance: the coordinator answers heartbeats (and commits) with
 *   REBALANCE_IN_PROGRESS; a handler that gets that from `heartbeat()` and
 *   throws ends the batch; the runner emits REBALANCING, rejoins and emits
 *   GROUP_JOIN with the new assignment (runner.js scheduleFetchManager,
 *   consumerGroup.js joinAndSync).
 * - Commits: `commitOffsets` returns without committing when the runner is not
 *   running (runner.js commitOffsets); a broker checks member and generation,
 *   never partition ownership, so any partition's offset can be written.
 * - `disconnect` stops the loop, waits for the batch in progress to end
 *   (runner.js stop → waitForConsumer) and emits STOP.
 */
import type { EachBatchPayload } from 'kafkajs';

export const EVENTS = {
  GROUP_JOIN: 'consumer.group_join',
  REBALANCING: 'consumer.rebalancing',
  STOP: 'consumer.stop',
  CRASH: 'consumer.crash',
} as const;

export interface FakeMessage {
  offset: number;
  value: Buffer;
  headers: Record<string, Buffer>;
}

/** The broker side: one topic's partitions and each group's committed offsets. */
export class FakeCluster {
  readonly log = new Map<number, FakeMessage[]>();
  private readonly groups = new Map<string, Map<number, number>>();

  constructor(partitions: number) {
    for (let p = 0; p < partitions; p++) this.log.set(p, []);
  }

  /** The committed offsets of a group (of group "g" when not named). */
  committed(group = 'g'): Map<number, number> {
    let c = this.groups.get(group);
    if (!c) {
      c = new Map();
      this.groups.set(group, c);
    }
    return c;
  }

  append(partition: number, value: Buffer, headers: Record<string, Buffer>): void {
    const list = this.log.get(partition) as FakeMessage[];
    list.push({ offset: list.length, value, headers });
  }

  produce(partition: number, tag: string, key: string, count = 1): void {
    this.append(partition, Buffer.from(key), { tag: Buffer.from(tag), key: Buffer.from(key), count: Buffer.from(String(count)) });
  }

  ends(group = 'g'): Array<{ partition: number; committed: number; low: number; high: number }> {
    return [...this.log].map(([partition, list]) => ({
      partition,
      committed: this.committed(group).get(partition) ?? -1,
      low: 0,
      high: list.length,
    }));
  }
}

/**
 * A fake kafkajs client over a FakeCluster for KafkaLog: the admin calls the
 * log makes (ListOffsets and OffsetFetch answers as kafkajs returns them:
 * offsets as strings, -1 for a group without a commit), an idempotent
 * producer that appends each message to partition hash(key) mod n, and a
 * FakeConsumer per group member, assigned every partition.
 */
export function fakeKafkaClient(cluster: FakeCluster, topic: string) {
  const hash = (key: string) => [...key].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
  const buf = (v: unknown) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v)));
  return {
    admin: () => ({
      connect: async () => {},
      disconnect: async () => {},
      listTopics: async () => [topic],
      createTopics: async () => true,
      fetchTopicOffsets: async () =>
        cluster.ends().map((e) => ({ partition: e.partition, offset: String(e.high), high: String(e.high), low: String(e.low) })),
      fetchOffsets: async ({ groupId }: { groupId: string }) => [
        {
          topic,
          partitions: cluster.ends(groupId).map((e) => ({ partition: e.partition, offset: String(e.committed), metadata: null })),
        },
      ],
    }),
    producer: () => ({
      connect: async () => {},
      disconnect: async () => {},
      send: async ({ messages }: { messages: Array<{ key: string; value: Buffer; headers: Record<string, string> }> }) => {
        await new Promise((r) => setTimeout(r, 1));
        for (const m of messages) {
          const headers = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, buf(v)]));
          cluster.append(hash(m.key) % cluster.log.size, m.value, headers);
        }
        return [];
      },
    }),
    consumer: ({ groupId }: { groupId: string }) =>
      Object.assign(new FakeConsumer(cluster, topic, { assignment: [...cluster.log.keys()], group: groupId }), {
        connect: async () => {},
        subscribe: async () => {},
      }),
  };
}

type Listener = (event: { payload: Record<string, unknown> }) => void;

export class FakeConsumer {
  readonly events = EVENTS;
  /** How many times each `partition:offset` was passed to eachBatch. */
  readonly deliveries = new Map<string, number>();
  heartbeats = 0;
  batches = 0;
  /** Generations joined (GROUP_JOIN events emitted). */
  joins = 0;
  private listeners = new Map<string, Listener[]>();
  private running = false;
  private rebalanceTo: number[] | null = null;
  private assignment: number[];
  private resolved = new Map<number, number>();
  private loop: Promise<void> | null = null;
  private readonly maxPerFetch: number;
  private readonly group: string;

  constructor(
    private readonly cluster: FakeCluster,
    private readonly topic: string,
    options: { assignment: number[]; maxPerFetch?: number; group?: string },
  ) {
    this.assignment = options.assignment;
    this.group = options.group ?? 'g';
    this.maxPerFetch = options.maxPerFetch ?? 100;
  }

  on(event: string, listener: Listener): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return () => list.splice(list.indexOf(listener), 1);
  }

  async run(config: { eachBatchAutoResolve?: boolean; eachBatch: (p: EachBatchPayload) => Promise<void> }): Promise<void> {
    this.join();
    this.running = true;
    this.loop = this.fetchLoop(config.eachBatch, config.eachBatchAutoResolve ?? true);
  }

  /** kafkajs `consumer.seek`: the partition's next fetch starts at `offset` (runner.js applies seeks before fetching). */
  seek({ partition, offset }: { topic: string; partition: number; offset: string }): void {
    this.resolved.set(partition, Number(offset));
  }

  /** The coordinator starts a rebalance; the member learns it at its next heartbeat or commit. */
  rebalance(assignment: number[]): void {
    this.rebalanceTo = assignment;
  }

  /** The consumer crashes (kafkajs emits CRASH; the runner stops). */
  crash(): void {
    this.running = false;
    this.emit(EVENTS.CRASH, { error: new Error('connection lost'), groupId: 'g', restart: true });
  }

  async commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void> {
    if (!this.running) return; // runner.js commitOffsets: "consumer not running, exiting"
    if (this.rebalanceTo) throw Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
    for (const o of offsets) this.cluster.committed(this.group).set(o.partition, Number(o.offset));
  }

  async disconnect(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    await this.loop;
    if (wasRunning) this.emit(EVENTS.STOP, {});
  }

  private join(): void {
    if (this.rebalanceTo) this.assignment = this.rebalanceTo;
    this.rebalanceTo = null;
    this.resolved.clear(); // a new OffsetManager: positions start again from the group's commits
    for (const p of this.assignment) this.resolved.set(p, this.cluster.committed(this.group).get(p) ?? 0);
    this.joins++;
    this.emit(EVENTS.GROUP_JOIN, { memberAssignment: { [this.topic]: [...this.assignment] } });
  }

  private async heartbeat(): Promise<void> {
    this.heartbeats++;
    if (this.rebalanceTo) throw Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
  }

  private async fetchLoop(eachBatch: (p: EachBatchPayload) => Promise<void>, autoResolve: boolean): Promise<void> {
    for (let round = 0; this.running && round < 100_000; round++) {
      await new Promise((r) => setImmediate(r)); // every real fetch is network I/O: timers get their turn
      try {
        let fetched = 0;
        for (const partition of this.assignment) {
          if (!this.running) break;
          const from = this.resolved.get(partition) ?? 0;
          const all = this.cluster.log.get(partition) ?? [];
          const messages = all.slice(from, from + this.maxPerFetch);
          if (messages.length === 0) continue;
          fetched++;
          for (const m of messages) {
            const k = `${partition}:${m.offset}`;
            this.deliveries.set(k, (this.deliveries.get(k) ?? 0) + 1);
          }
          this.batches++;
          const last = messages[messages.length - 1].offset;
          await eachBatch({
            batch: {
              topic: this.topic,
              partition,
              highWatermark: String(all.length),
              messages: messages.map((m) => ({
                key: null,
                value: m.value,
                headers: m.headers,
                timestamp: '0',
                attributes: 0,
                offset: String(m.offset),
              })),
              isEmpty: () => false,
              firstOffset: () => String(messages[0].offset),
              lastOffset: () => String(last),
              offsetLag: () => String(all.length - 1 - last),
              offsetLagLow: () => String(all.length - 1 - messages[0].offset),
            },
            resolveOffset: (offset: string) => {
              this.resolved.set(partition, Number(offset) + 1);
            },
            heartbeat: () => this.heartbeat(),
            pause: () => () => {},
            commitOffsetsIfNecessary: async () => {},
            uncommittedOffsets: () => ({ topics: [] }),
            isRunning: () => this.running,
            isStale: () => false,
          });
          if (autoResolve) this.resolved.set(partition, last + 1);
          await this.heartbeat();
        }
        if (fetched === 0) {
          await this.heartbeat();
          await new Promise((r) => setTimeout(r, 5)); // a fetch's maxWaitTime, shortened
        }
      } catch (err) {
        if ((err as { type?: string }).type !== 'REBALANCE_IN_PROGRESS') throw err;
        this.emit(EVENTS.REBALANCING, { groupId: 'g', memberId: 'm' });
        await new Promise((r) => setTimeout(r, 5));
        this.join();
      }
    }
  }

  private emit(event: string, payload: Record<string, unknown>): void {
    for (const l of this.listeners.get(event) ?? []) l({ payload });
  }
}
