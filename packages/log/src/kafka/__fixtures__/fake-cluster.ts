/**
 * A fake of kafkajs's *cluster* (the object below its consumer), answering the
 * decoded API calls kafkajs 2.2.4 makes: JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup, OffsetFetch, OffsetCommit, ListOffsets and Fetch. kafkajs's own
 * consumer code runs on top of it unchanged (src/consumer/index.js, runner.js,
 * fetchManager.js, consumerGroup.js, offsetManager, Batch, the round-robin
 * assigner), so the reader meets kafkajs's real fetch, resolve, heartbeat,
 * rebalance and commit behaviour, only the network is fake.
 *
 * Broker rules it keeps: one topic; a group coordinator with generations;
 * a pending rebalance answers Heartbeat and OffsetCommit with
 * REBALANCE_IN_PROGRESS; an OffsetCommit of another generation gets
 * ILLEGAL_GENERATION; ownership of partitions is never checked (brokers do
 * not); a Fetch without data waits a little (its maxWaitTime, shortened).
 */
// biome-ignore lint/suspicious/noExplicitAny: kafkajs internals have no typings
type Any = any;
const kafkajsSrc = (path: string): Any => require(`kafkajs/src/${path}`);
const { createErrorFromCode } = kafkajsSrc('protocol/error');
const REBALANCE_IN_PROGRESS = 27;
const ILLEGAL_GENERATION = 22;

interface Msg {
  offset: string;
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, Buffer>;
}

export class FakeKafkaCluster {
  readonly partitions: Msg[][];
  /** Committed offsets per group, as the coordinator holds them. */
  readonly commits = new Map<string, Map<number, number>>();
  /** Extra members the next join reports (a phantom peer takes part of the assignment). */
  peers: string[] = [];
  fetches = 0;
  private generation = 0;
  private rebalancePending = false;
  private readonly offsetsCache = new Map<string, Any>();
  private nextMember = 1;

  constructor(
    readonly topic: string,
    partitionCount: number,
  ) {
    this.partitions = Array.from({ length: partitionCount }, () => []);
  }

  append(partition: number, key: Buffer | null, value: Buffer, headers: Record<string, Buffer>): void {
    const list = this.partitions[partition];
    list.push({ offset: String(list.length), key, value, headers });
  }

  produce(partition: number, tag: string, key: string): void {
    const list = this.partitions[partition];
    list.push({
      offset: String(list.length),
      key: Buffer.from(key),
      value: Buffer.from(key),
      headers: { tag: Buffer.from(tag), key: Buffer.from(key), count: Buffer.from('1') },
    });
  }

  /** The coordinator starts a rebalance: members learn it from their next heartbeat or commit. */
  rebalance(peers: string[]): void {
    this.peers = peers;
    this.rebalancePending = true;
  }

  committed(group: string): Map<number, number> {
    let c = this.commits.get(group);
    if (!c) {
      c = new Map();
      this.commits.set(group, c);
    }
    return c;
  }

  // ---- kafkajs Cluster surface used by the consumer ----
  async connect() {}
  async disconnect() {}
  isConnected() {
    return true;
  }
  async refreshMetadata() {}
  async refreshMetadataIfNecessary() {}
  async addMultipleTargetTopics() {}
  getNodeIds() {
    return [0];
  }
  removeBroker() {}
  findTopicPartitionMetadata(topic: string) {
    if (topic !== this.topic) return [];
    return this.partitions.map((_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], offlineReplicas: [] }));
  }
  committedOffsets({ groupId }: { groupId: string }) {
    if (!this.offsetsCache.has(groupId)) this.offsetsCache.set(groupId, {});
    return this.offsetsCache.get(groupId);
  }
  defaultOffset({ fromBeginning }: { fromBeginning: boolean }) {
    return fromBeginning ? -2 : -1;
  }
  async fetchTopicsOffset(topics: Array<{ topic: string; fromBeginning: boolean; partitions: Array<{ partition: number }> }>) {
    return topics.map(({ topic, fromBeginning, partitions }) => ({
      topic,
      partitions: partitions.map(({ partition }) => ({
        partition,
        offset: fromBeginning ? '0' : String(this.partitions[partition].length),
      })),
    }));
  }
  async findGroupCoordinator() {
    return this.broker;
  }
  async findBroker() {
    return this.broker;
  }

  private readonly broker = {
    isConnected: () => true,
    joinGroup: async ({ memberId, groupProtocols }: Any) => {
      await new Promise((r) => setTimeout(r, 5));
      const id = memberId || `member-${this.nextMember++}`;
      this.generation++;
      this.rebalancePending = false;
      const protocol = groupProtocols[0];
      return {
        generationId: this.generation,
        leaderId: id,
        memberId: id,
        groupProtocol: protocol.name,
        members: [id, ...this.peers].map((m) => ({ memberId: m, memberMetadata: protocol.metadata })),
      };
    },
    syncGroup: async ({ memberId, groupAssignment }: Any) => ({
      memberAssignment: groupAssignment.find((a: Any) => a.memberId === memberId)?.memberAssignment ?? Buffer.alloc(0),
    }),
    heartbeat: async () => {
      if (this.rebalancePending) throw createErrorFromCode(REBALANCE_IN_PROGRESS);
    },
    leaveGroup: async () => {},
    offsetFetch: async ({ groupId, topics }: Any) => ({
      responses: topics.map(({ topic, partitions }: Any) => ({
        topic,
        partitions: partitions.map(({ partition }: Any) => ({
          partition,
          offset: String(this.committed(groupId).get(partition) ?? -1),
          metadata: '',
          errorCode: 0,
        })),
      })),
    }),
    offsetCommit: async ({ groupId, groupGenerationId, topics }: Any) => {
      if (this.rebalancePending) throw createErrorFromCode(REBALANCE_IN_PROGRESS);
      if (groupGenerationId !== this.generation) throw createErrorFromCode(ILLEGAL_GENERATION);
      for (const { partitions } of topics) {
        for (const { partition, offset } of partitions) this.committed(groupId).set(partition, Number(offset));
      }
      return { responses: [] };
    },
    fetch: async ({ topics }: Any) => {
      this.fetches++;
      const responses = topics.map(({ topic, partitions }: Any) => ({
        topicName: topic,
        partitions: partitions.map(({ partition, fetchOffset }: Any) => {
          const list = this.partitions[partition];
          const messages = list.slice(Number(fetchOffset), Number(fetchOffset) + 50).map((m) => ({
            ...m,
            timestamp: '0',
            attributes: 0,
            isControlRecord: false,
            batchContext: { producerId: '-1', inTransaction: false },
          }));
          return {
            partition,
            errorCode: 0,
            highWatermark: String(list.length),
            lastStableOffset: String(list.length),
            abortedTransactions: [],
            preferredReadReplica: -1,
            messages,
          };
        }),
      }));
      const empty = responses.every((t: Any) => t.partitions.every((p: Any) => p.messages.length === 0));
      if (empty) await new Promise((r) => setTimeout(r, 20));
      return { responses };
    },
  };
}

/** A real kafkajs consumer (its src/consumer code) over the fake cluster. */
export function kafkajsConsumer(cluster: FakeKafkaCluster, groupId: string): Any {
  const createConsumer = kafkajsSrc('consumer');
  const { createLogger, LEVELS } = kafkajsSrc('loggers');
  return createConsumer({
    cluster,
    groupId,
    logger: createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} }),
    heartbeatInterval: 100,
    sessionTimeout: 1000,
    maxWaitTimeInMs: 20,
    retry: { retries: 2, initialRetryTime: 20, maxRetryTime: 100 },
  });
}

/**
 * A kafkajs client for KafkaLog over the fake cluster: kafkajs's real
 * consumer, an admin answering ListOffsets/OffsetFetch as kafkajs returns
 * them, and a producer appending each message to partition hash(key) mod n.
 */
export function fakeKafkajsClient(cluster: FakeKafkaCluster) {
  const hash = (key: string) => [...key].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
  return {
    admin: () => ({
      connect: async () => {},
      disconnect: async () => {},
      listTopics: async () => [cluster.topic],
      createTopics: async () => true,
      fetchTopicOffsets: async () =>
        cluster.partitions.map((list, partition) => ({ partition, offset: String(list.length), high: String(list.length), low: '0' })),
      fetchOffsets: async ({ groupId }: { groupId: string }) => [
        {
          topic: cluster.topic,
          partitions: cluster.partitions.map((_, partition) => ({
            partition,
            offset: String(cluster.committed(groupId).get(partition) ?? -1),
            metadata: null,
          })),
        },
      ],
    }),
    producer: () => ({
      connect: async () => {},
      disconnect: async () => {},
      send: async ({ messages }: { messages: Array<{ key: string; value: Buffer; headers: Record<string, string> }> }) => {
        await new Promise((r) => setTimeout(r, 2));
        for (const m of messages) {
          const headers = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)]));
          cluster.append(hash(m.key) % cluster.partitions.length, Buffer.from(m.key), m.value, headers);
        }
        return [];
      },
    }),
    consumer: ({ groupId }: { groupId: string }) => kafkajsConsumer(cluster, groupId),
  };
}
