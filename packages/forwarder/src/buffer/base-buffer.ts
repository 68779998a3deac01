/**
 * Queueing, space accounting and the overflow policy, shared by the disk and
 * memory buffers; the subclasses only store bytes.
 */
import { RetryableError } from '@tributary/core';
import type { ForwardChunk } from '@tributary/forward-protocol';
import { BufferErrorCode, type BufferLimits, type BufferStats, type ChunkBuffer, type OpenChunk, type SealedChunk } from './chunk-buffer';

export type { OpenChunk };

export abstract class BaseBuffer implements ChunkBuffer {
  protected readonly open = new Map<string, OpenChunk>();
  /** Sealed chunks in creation order (insertion order of the Map). */
  protected readonly sealed = new Map<string, SealedChunk>();
  private readonly inFlight = new Set<string>();
  protected totalBytes = 0;
  private droppedEvents = 0;
  private droppedChunks = 0;
  private readonly readyListeners: Array<() => void> = [];
  private spaceWaiters: Array<{ need: number; resolve(): void; reject(err: Error): void }> = [];
  protected closed = false;

  constructor(protected readonly limits: BufferLimits) {}

  protected abstract writeOpen(chunk: OpenChunk, parts: ForwardChunk[], isNew: boolean): number;
  protected abstract sync(): Promise<void>;
  protected abstract sealStorage(chunk: OpenChunk): void;
  protected abstract readStorage(chunk: SealedChunk): Promise<Buffer[]>;
  protected abstract removeStorage(chunk: SealedChunk): Promise<void>;
  protected abstract newId(): Buffer;
  /** Drops a sealed chunk's storage synchronously (drop_oldest). */
  protected abstract removeStorageSync(chunk: SealedChunk): void;

  async append(chunks: ForwardChunk[]): Promise<void> {
    if (this.closed) throw new RetryableError(BufferErrorCode.Closed, 'The buffer is closed; the events were not accepted.');
    const bytes = chunks.reduce((n, c) => n + c.entries.length, 0);
    if (bytes > this.limits.maxBytes) {
      throw new RetryableError(
        BufferErrorCode.Full,
        `A batch of ${bytes} bytes is larger than the whole buffer (max_bytes ${this.limits.maxBytes}).`,
      );
    }
    if (this.totalBytes + bytes > this.limits.maxBytes) {
      if (this.limits.overflow === 'drop_oldest') this.dropOldest(bytes);
      if (this.totalBytes + bytes > this.limits.maxBytes) await this.waitForSpace(bytes);
    }
    // Group by tag so each open chunk gets one write per batch.
    const byTag = new Map<string, ForwardChunk[]>();
    for (const c of chunks) {
      const list = byTag.get(c.tag);
      if (list) list.push(c);
      else byTag.set(c.tag, [c]);
    }
    const now = Date.now();
    for (const [tag, parts] of byTag) {
      let open = this.open.get(tag);
      const isNew = !open;
      if (!open) {
        open = { id: this.newId(), tag, count: 0, bytes: 0, stored: 0, createdAt: now };
        this.open.set(tag, open);
      }
      const written = this.writeOpen(open, parts, isNew);
      open.stored += written;
      this.totalBytes += written;
      for (const p of parts) {
        open.count += p.count;
        open.bytes += p.entries.length;
      }
      if (open.bytes >= this.limits.chunkLimitBytes) this.seal(open);
    }
    await this.sync();
  }

  isFull(): boolean {
    return this.limits.overflow === 'block' && this.totalBytes >= this.limits.maxBytes;
  }

  take(now = Date.now()): SealedChunk | null {
    for (const [key, chunk] of this.sealed) {
      if (this.inFlight.has(key) || chunk.notBefore > now) continue;
      this.inFlight.add(key);
      chunk.attempts++;
      return chunk;
    }
    return null;
  }

  read(chunk: SealedChunk): Promise<Buffer[]> {
    return this.readStorage(chunk);
  }

  async ack(chunk: SealedChunk): Promise<void> {
    const key = chunk.id.toString('hex');
    this.inFlight.delete(key);
    if (!this.sealed.delete(key)) return;
    await this.removeStorage(chunk);
    this.freed(chunk);
  }

  release(chunk: SealedChunk, notBefore: number): void {
    chunk.notBefore = notBefore;
    this.inFlight.delete(chunk.id.toString('hex'));
  }

  sealDue(now: number, force = false): number {
    let n = 0;
    for (const open of [...this.open.values()]) {
      if (force || now - open.createdAt >= this.limits.flushIntervalMs) {
        this.seal(open);
        n++;
      }
    }
    return n;
  }

  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
  }

  stats(): BufferStats {
    let events = 0;
    let oldest: number | null = null;
    for (const c of [...this.open.values(), ...this.sealed.values()]) {
      events += c.count;
      if (oldest === null || c.createdAt < oldest) oldest = c.createdAt;
    }
    return {
      bytes: this.totalBytes,
      chunks: this.open.size + this.sealed.size,
      events,
      oldestCreatedAt: oldest,
      droppedEvents: this.droppedEvents,
      droppedChunks: this.droppedChunks,
    };
  }

  async close(): Promise<void> {
    this.sealDue(Date.now(), true);
    this.closed = true;
    for (const w of this.spaceWaiters) w.reject(new RetryableError(BufferErrorCode.Closed, 'The buffer closed while waiting for space.'));
    this.spaceWaiters = [];
    await this.sync();
  }

  /** Registers a chunk recovered from storage at start-up. */
  protected adopt(chunk: SealedChunk): void {
    this.sealed.set(chunk.id.toString('hex'), chunk);
    this.totalBytes += chunk.stored;
  }

  private seal(open: OpenChunk): void {
    this.open.delete(open.tag);
    this.sealStorage(open);
    this.sealed.set(open.id.toString('hex'), { ...open, attempts: 0, notBefore: 0 });
    for (const l of this.readyListeners) l();
  }

  private freed(chunk: SealedChunk): void {
    this.totalBytes -= chunk.stored;
    while (this.spaceWaiters.length && this.totalBytes + this.spaceWaiters[0].need <= this.limits.maxBytes) {
      const w = this.spaceWaiters.shift();
      w?.resolve();
    }
  }

  private waitForSpace(need: number): Promise<void> {
    return new Promise((resolve, reject) => this.spaceWaiters.push({ need, resolve, reject }));
  }

  private dropOldest(need: number): void {
    for (const [key, chunk] of [...this.sealed]) {
      if (this.totalBytes + need <= this.limits.maxBytes) return;
      if (this.inFlight.has(key)) continue;
      this.sealed.delete(key);
      this.removeStorageSync(chunk);
      this.droppedEvents += chunk.count;
      this.droppedChunks++;
      this.onDrop?.(chunk);
      this.freed(chunk);
    }
  }

  /** Observer for drop_oldest, so the owner can log and count. */
  onDrop?: (chunk: SealedChunk) => void;
}
