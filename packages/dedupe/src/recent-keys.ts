/**
 * The dedupe keys this node wrote to its log most recently, newest last: the
 * source a Redis dedupe store rebuilds its done marks from after Redis lost
 * its memory. Seeded at start from the keys the node's log retains, then fed
 * every key the log accepted. Bounded by count (a ring) and by age (keys
 * older than the done-mark TTL are no longer worth a mark).
 */
export class RecentKeys {
  private readonly keys: string[];
  private readonly times: Float64Array;
  /** Index of the next write. */
  private head = 0;
  private size = 0;

  constructor(
    private readonly capacity: number,
    private readonly maxAgeMs: number,
  ) {
    this.keys = new Array<string>(capacity);
    this.times = new Float64Array(capacity);
  }

  add(keys: readonly string[], now = Date.now()): void {
    for (const k of keys) {
      this.keys[this.head] = k;
      this.times[this.head] = now;
      this.head = (this.head + 1) % this.capacity;
      if (this.size < this.capacity) this.size++;
    }
  }

  /** The keys younger than the age bound, oldest first (a copy: adds during a rebuild do not disturb it). */
  snapshot(now = Date.now()): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.size; i++) {
      const at = (this.head - this.size + i + this.capacity) % this.capacity;
      if (now - this.times[at] <= this.maxAgeMs) out.push(this.keys[at]);
    }
    return out;
  }
}
