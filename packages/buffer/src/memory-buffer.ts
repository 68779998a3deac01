/**
 * Memory buffer, for those who accept losing what it holds when the process
 * dies. Same queueing, limits and overflow policy as the disk buffer (BaseBuffer),
 * over memory storage.
 */
import { AckedChunkIds, type AckedIdsWindow } from './acked-chunk-ids';
import { BaseBuffer } from './base-buffer';
import type { BufferLimits } from './chunk-buffer';
import { MemoryStorage } from './memory-storage';

export class MemoryBuffer extends BaseBuffer {
  constructor(limits: BufferLimits, ackedIds: AckedIdsWindow) {
    const ids = AckedChunkIds.inMemory(ackedIds);
    super(limits, ids, () => new MemoryStorage(ids));
  }
}
