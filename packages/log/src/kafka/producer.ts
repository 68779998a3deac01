/**
 * Group commit for the Kafka log's appends: while one produce request is in
 * flight, later appends wait, and the next request carries all of them (up to
 * `maxRequestBytes`), the way the embedded log shares one fdatasync among the
 * appends that arrived during the previous one.
 *
 * Why one request at a time: the producer is idempotent, and kafkajs
 * serialises an idempotent producer's requests to a broker anyway (a mutex
 * per broker around the sequence numbers, src/producer/eosManager); KIP-98's
 * rule for idempotence is also one request in flight per connection
 * (`maxInFlightRequests: 1`), which the log sets. Grouping is what makes
 * throughput, not parallel requests.
 *
 * An append is never split across requests: its records resolve or reject
 * together. One request's failure rejects every append in it (each caller
 * then releases its dedupe claims and does not ack; the sender resends).
 */
import type { Message } from 'kafkajs';

/** Sends one group of messages; resolves when every in-sync replica has them. */
export type SendMessages = (messages: Message[]) => Promise<void>;

interface Pending {
  messages: Message[];
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupedSender {
  private waiting: Pending[] = [];
  private inFlight = false;

  /**
   * @param maxRequestBytes most message bytes (before compression) in one
   *   request; an append larger than this goes alone.
   */
  constructor(
    private readonly send: SendMessages,
    private readonly maxRequestBytes: number,
  ) {}

  /** Resolves when the messages are durable in Kafka; rejects with the produce error. */
  append(messages: Message[], bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ messages, bytes, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.inFlight || this.waiting.length === 0) return;
    let bytes = this.waiting[0].bytes;
    let n = 1;
    while (n < this.waiting.length && bytes + this.waiting[n].bytes <= this.maxRequestBytes) bytes += this.waiting[n++].bytes;
    const group = this.waiting.splice(0, n);
    this.inFlight = true;
    const messages = group.length === 1 ? group[0].messages : group.flatMap((p) => p.messages);
    let sent: Promise<void>;
    try {
      sent = this.send(messages);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      () => this.settle(group, null),
      (err: unknown) => this.settle(group, err ?? new Error('produce failed')),
    );
  }

  private settle(group: Pending[], err: unknown): void {
    this.inFlight = false;
    for (const p of group) {
      if (err) p.reject(err);
      else p.resolve();
    }
    this.next();
  }
}
