/**
 * The fsync policy, as decisions (pure; the descriptor lifecycle carries them
 * out, see descriptors.ts):
 *
 * - `always`: an append resolves only after its files are fdatasynced, and
 *   its acked chunk ids are written only after its events are synced, then
 *   synced themselves, so no id reaches the disk before its events.
 * - `interval`: an append resolves once written (page cache: survives
 *   `kill -9`); files written since the last tick are synced every
 *   `fsyncIntervalMs`, which is the window a power loss can cost. Ids are
 *   written with their events (one tick covers both).
 */
export type FsyncMode = 'always' | 'interval';

export interface FsyncPolicy {
  /** An append resolves only after its files are synced. */
  syncBeforeAck: boolean;
  /** An append's acked chunk ids are recorded only once its events are synced. */
  idsAfterSync: boolean;
  /** The background sync's period (ms), or null when there is none. */
  intervalMs: number | null;
}

export function fsyncPolicy(mode: FsyncMode, fsyncIntervalMs: number): FsyncPolicy {
  return mode === 'always'
    ? { syncBeforeAck: true, idsAfterSync: true, intervalMs: null }
    : { syncBeforeAck: false, idsAfterSync: false, intervalMs: fsyncIntervalMs };
}

/** Sealed files kept open for the interval sync at most; past it a sealed file is synced and closed at once. */
export const MAX_OPEN_SEALED = 256;

/**
 * What becomes of a chunk's descriptor when the chunk is sealed (sealing
 * changes no bytes). Under `always` the append that sealed it synced it
 * before its ack: `close`. Under `interval` a file not synced yet stays open
 * for the next tick, or until its chunk is delivered, when it needs no sync
 * any more (`keep`) — unless a slow disk has let too many pile up: then it is
 * synced now and closed, as descriptors are finite (`sync-close`).
 */
export function sealedFileAction(policy: FsyncPolicy, unsynced: boolean, openSealed: number): 'keep' | 'sync-close' | 'close' {
  if (policy.intervalMs === null || !unsynced) return 'close';
  return openSealed < MAX_OPEN_SEALED ? 'keep' : 'sync-close';
}

/**
 * The order of an interval tick's syncs: chunk files first, the acked chunk
 * id journal last, so ids reach the disk after the events written before them.
 */
export function syncOrder(dirty: Iterable<number>, journal: number | null): number[] {
  const fds: number[] = [];
  let journalDirty = false;
  for (const fd of dirty) {
    if (fd === journal) journalDirty = true;
    else fds.push(fd);
  }
  if (journalDirty && journal !== null) fds.push(journal);
  return fds;
}
