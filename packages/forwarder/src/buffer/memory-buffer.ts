/**
 * Memory buffer, for those who accept losing what it holds when the process
 * dies. Same queueing, limits and overflow policy as the disk buffer.
 */
import { randomBytes } from 'node:crypto';
import type { ForwardChunk } from '@tributary/forward-protocol';
import { AckedChunkIds, type AckedIdsWindow } from './acked-chunk-ids';
import { BaseBuffer, type OpenChunk } from './base-buffer';
import type { BufferLimits, SealedChunk } from './chunk-buffer';

export class MemoryBuffer extends BaseBuffer {
  private readonly data = new Map<string, Buffer[]>();

  constructor(limits: BufferLimits, ackedIds: AckedIdsWindow) {
    super(limits, AckedChunkIds.inMemory(ackedIds));
  }

  protected newId(): Buffer {
    return randomBytes(16);
  }

  protected writeOpen(chunk: OpenChunk, parts: ForwardChunk[]): number {
    const key = chunk.id.toString('hex');
    const list = this.data.get(key) ?? [];
    let n = 0;
    for (const p of parts) {
      // Copy: the source's buffers may be views into larger socket reads.
      list.push(Buffer.from(p.entries));
      n += p.entries.length;
    }
    this.data.set(key, list);
    return n;
  }

  protected undoWrite(chunk: OpenChunk, isNew: boolean): boolean {
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

  protected async sync(): Promise<void> {}

  protected sealStorage(): void {}

  protected async readStorage(chunk: SealedChunk): Promise<Buffer[]> {
    return this.data.get(chunk.id.toString('hex')) ?? [];
  }

  protected async removeStorage(chunk: SealedChunk): Promise<void> {
    this.data.delete(chunk.id.toString('hex'));
  }

  protected removeStorageSync(chunk: SealedChunk): void {
    this.data.delete(chunk.id.toString('hex'));
  }
}
