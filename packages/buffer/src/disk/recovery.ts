/**
 * Recovery at open: every chunk file left by an earlier run is read back.
 * Complete records are kept and a torn or corrupt tail is cut off; a file
 * whose header cannot be read is set aside as `*.corrupt`; an empty file (a
 * spare made ahead of time, or a chunk whose first write never happened) and
 * a file without events are removed. A bad file never stops forwarding: each
 * file gets a report, and the chunks found are sent again under their ids.
 */
import { join } from 'node:path';
import type { Filesystem } from '@tributary/core';
import type { SealedChunk } from '../chunk-buffer';
import { CHUNK_ID_BYTES, type ChunkIds, chunkIdOfFileName, parseChunkFile } from './chunk-file';

export interface RecoveryReport {
  file: string;
  chunks: number;
  events: number;
  /** Client chunk ids found beside the file's events (its id records), when it has events. */
  ids: number;
  /** Bytes cut off a torn or corrupt tail. */
  skippedBytes: number;
  problem?: string;
}

export interface Recovered {
  /** The chunks found, oldest first, ready to send. */
  chunks: SealedChunk[];
  /** One per chunk file read (empty files left out: nothing was accepted into them). */
  reports: RecoveryReport[];
  /** The client chunk ids written beside the events found (chunk-file.ts), for the acked-id memory (which orders them by ack time). */
  ids: ChunkIds[];
}

/** Reads back, repairs and reports every chunk file in `dir`. Rejects only when the directory or a file cannot be read or repaired. */
export async function recoverChunks(fs: Filesystem, dir: string): Promise<Recovered> {
  const reports: RecoveryReport[] = [];
  const chunks: SealedChunk[] = [];
  const ids: ChunkIds[] = [];
  for (const name of await fs.readdir(dir)) {
    const id = chunkIdOfFileName(name);
    if (!id) continue;
    const path = join(dir, name);
    const data = await fs.readFile(path);
    const wellNamed = id.length === CHUNK_ID_BYTES;
    if (data.length === 0 && wellNamed) {
      await fs.unlink(path);
      continue;
    }
    const parsed = wellNamed ? parseChunkFile(data, true) : null;
    if (!parsed) {
      await fs.rename(path, `${path}.corrupt`);
      reports.push({
        file: name,
        chunks: 0,
        events: 0,
        ids: 0,
        skippedBytes: data.length,
        problem: 'unreadable header; file set aside as .corrupt',
      });
      continue;
    }
    if (parsed.goodLength < data.length) await fs.truncate(path, parsed.goodLength);
    const events = parsed.events;
    if (events === 0) {
      await fs.unlink(path);
    } else {
      let bytes = 0;
      for (const e of parsed.entries) bytes += e.length;
      chunks.push({
        id,
        tag: parsed.tag,
        count: events,
        bytes,
        stored: parsed.goodLength,
        createdAt: parsed.createdAt,
        attempts: 0,
        notBefore: 0,
      });
    }
    // The ids of a file with events (one without is removed, its ids with it).
    let idCount = 0;
    if (events > 0) {
      for (const r of parsed.ids) idCount += r.n;
      ids.push(...parsed.ids);
    }
    reports.push({
      file: name,
      chunks: events ? 1 : 0,
      events,
      ids: idCount,
      skippedBytes: data.length - parsed.goodLength,
      problem: parsed.problem,
    });
  }
  chunks.sort((a, b) => a.createdAt - b.createdAt);
  return { chunks, reports, ids };
}
