/**
 * Chunks in memory: what they hold is lost when the process dies. Every
 * append's entries are copied, as the source's buffers may be views into
 * larger socket reads.
 */
import { randomBytes } from 'node:crypto';
import type { ForwardChunk } from '@tributary/forward-protocol';
import type { AckedChunkIds } from './acked-chunk-ids';
import type { OpenChunk, SealedChunk } from './chunk-buffer';
import type { ChunkStorage } from './chunk-storage';

export class MemoryStorage implements ChunkStorage {
  readonly idsAfterSync = false;
  /** Entries by chunk key, one buffer per part appended. */
  private readonly data = new Map<string, Buffer[]>();

  constructor(private readonly ackedIds: AckedChunkIds) {}

  newId(): Buffer {
    return randomBytes(16);
  }

  write(chunk: OpenChunk, parts: ForwardChunk[]): number {
    const key = chunk.id.toString('hex');
    const list = this.data.get(key) ?? [];
    let n = 0;
    for (const p of parts) {
      list.push(Buffer.from(p.entries));
      n += p.entries.length;
    }
    this.data.set(key, list);
    return n;
  }

  undo(chunk: OpenChunk, isNew: boolean): boolean {
    const key = chunk.id.toString('hex');
    const list = this.data.get(key);
    if (isNew || !list) {
      this.data.delete(key);
      return true;
    }
    let held = list.reduce((n, b) => n + b.length, 0);
    while (held > chunk.stored) held -= (list.pop() as Buffer).length;
    return true;
  }

  settleWrites(): void {}

  recordIds(hashes: Uint32Array, n: number, now: number): void {
    this.ackedIds.recordHashes(hashes, n, now);
  }

  async sync(): Promise<void> {}

  seal(): void {}

  async read(chunk: SealedChunk): Promise<Buffer[]> {
    return this.data.get(chunk.id.toString('hex')) ?? [];
  }

  async remove(chunk: SealedChunk): Promise<void> {
    this.removeNow(chunk);
  }

  removeNow(chunk: SealedChunk): void {
    this.data.delete(chunk.id.toString('hex'));
  }

  async close(): Promise<void> {}
}
