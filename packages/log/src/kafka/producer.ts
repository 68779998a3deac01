/**
 * Group commit for the Kafka log's appends: appends that arrive while every
 * producer has a request in flight wait, and the next free producer's request
 * carries all of them (up to `maxRequestBytes`), the way the embedded log
 * shares one fdatasync among the appends that arrived during the previous one.
 *
 * One request in flight per producer: each is idempotent, kafkajs serialises
 * an idempotent producer's requests to a broker anyway (a mutex per broker
 * around the sequence numbers, src/producer/eosManager), and KIP-98's rule for
 * idempotence is one request in flight per connection (`maxInFlightRequests:
 * 1`), which the log sets. Several producers (each its own producer id,
 * sequence numbers and connection) keep several requests in flight: with one,
 * throughput was one request per broker round trip, and the main thread sat
 * idle for 45 % of a loaded run waiting for it. Records of different requests
 * may land in either order; no append depends on another's order.
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
  /** Producers with no request in flight. */
  private readonly free: SendMessages[];

  /**
   * @param senders one per producer, each sent one request at a time.
   * @param maxRequestBytes most message bytes (before compression) in one
   *   request; an append larger than this goes alone.
   */
  constructor(
    senders: SendMessages[],
    private readonly maxRequestBytes: number,
  ) {
    if (senders.length === 0) throw new Error('GroupedSender needs at least one sender.');
    this.free = [...senders];
  }

  /** Resolves when the messages are durable in Kafka; rejects with the produce error. */
  append(messages: Message[], bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ messages, bytes, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.free.length > 0 && this.waiting.length > 0) {
      let bytes = this.waiting[0].bytes;
      let n = 1;
      while (n < this.waiting.length && bytes + this.waiting[n].bytes <= this.maxRequestBytes) bytes += this.waiting[n++].bytes;
      const group = this.waiting.splice(0, n);
      const send = this.free.pop() as SendMessages;
      const messages = group.length === 1 ? group[0].messages : group.flatMap((p) => p.messages);
      let sent: Promise<void>;
      try {
        sent = send(messages);
      } catch (err) {
        sent = Promise.reject(err);
      }
      sent.then(
        () => this.settle(send, group, null),
        (err: unknown) => this.settle(send, group, err ?? new Error('produce failed')),
      );
    }
  }

  private settle(send: SendMessages, group: Pending[], err: unknown): void {
    this.free.push(send);
    for (const p of group) {
      if (err) p.reject(err);
      else p.resolve();
    }
    this.next();
  }
}
