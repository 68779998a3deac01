/**
 * Single-node dedupe with no Redis. Claims live in memory (one node: no one
 * else can hold them); done marks are rebuilt at start from the keys the
 * embedded log itself holds, so they survive a restart with no second file to
 * keep in step with the log. Bounded: at most `maxEntries` marks (oldest
 * forgotten first) and `doneTtlMs` each.
 */
import type { ClaimResult, DedupeStore } from './dedupe-store';

export class EmbeddedDedupe implements DedupeStore {
  readonly kind = 'embedded' as const;
  private readonly done = new Map<string, number>();
  private readonly claimed = new Set<string>();

  constructor(
    private readonly doneTtlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** Seeds done marks from the log's retained keys. */
  async start(logged: readonly string[]): Promise<void> {
    for (const k of logged) this.remember(k);
  }

  private remember(key: string): void {
    this.done.delete(key);
    this.done.set(key, Date.now() + this.doneTtlMs);
    while (this.done.size > this.maxEntries) {
      const oldest = this.done.keys().next().value as string;
      this.done.delete(oldest);
    }
  }

  async claim(keys: string[]): Promise<ClaimResult[]> {
    const now = Date.now();
    return keys.map((k) => {
      const until = this.done.get(k);
      if (until !== undefined && until > now) return 'done';
      if (this.claimed.has(k)) return 'busy';
      this.claimed.add(k);
      return 'claimed';
    });
  }

  async markDone(keys: string[]): Promise<void> {
    for (const k of keys) {
      this.claimed.delete(k);
      this.remember(k);
    }
  }

  async release(keys: string[]): Promise<void> {
    for (const k of keys) this.claimed.delete(k);
  }

  problem(): string | null {
    return null;
  }

  async close(): Promise<void> {}
}
