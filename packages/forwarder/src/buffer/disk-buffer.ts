/**
 * Crash-safe disk buffer: one append-only file per chunk, named by the chunk's
 * id, so the id survives restarts.
 *
 *   file    = record(header) record(entries)*
 *   record  = u32 BE payload length | u32 BE crc32(payload) | payload
 *   header  = JSON { "v": 1, "tag": string, "createdAt": ms }
 *
 * An append resolves after its bytes are written (page cache: survives
 * `kill -9`), and after fdatasync under `fsync: always`; under `interval`,
 * dirty files are synced every `fsyncIntervalMs` (the window a power loss can
 * cost). On start every file is read back: complete records are kept, a torn
 * or corrupt tail is cut off and reported, unreadable files are set aside as
 * `*.corrupt` — a bad file never stops forwarding.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { RetryableError, remainingBuffers } from '@tributary/core';
import { type ForwardChunk, countEntries } from '@tributary/forward-protocol';
import { BaseBuffer, type OpenChunk } from './base-buffer';
import { BufferErrorCode, type BufferLimits, type SealedChunk } from './chunk-buffer';

export interface DiskBufferOptions extends BufferLimits {
  path: string;
  fsync: 'always' | 'interval';
  fsyncIntervalMs: number;
}

export interface RecoveryReport {
  file: string;
  chunks: number;
  events: number;
  /** Bytes cut off a torn or corrupt tail. */
  skippedBytes: number;
  problem?: string;
}

const RECORD_HEADER = 8;
/** Above this many records, a chunk's entries are joined before sending (see readStorage). */
const MAX_SEND_PARTS = 8;
const SUFFIX = '.chunk';

interface ParsedFile {
  tag: string;
  createdAt: number;
  entries: Buffer[];
  goodLength: number;
  problem?: string;
}

/** Parses records until the first incomplete or corrupt one. */
function parseFile(data: Buffer, verify: boolean): ParsedFile | null {
  let pos = 0;
  let header: { tag: string; createdAt: number } | null = null;
  const entries: Buffer[] = [];
  let problem: string | undefined;
  while (pos < data.length) {
    if (pos + RECORD_HEADER > data.length) {
      problem = `torn record header at byte ${pos}`;
      break;
    }
    const len = data.readUInt32BE(pos);
    const sum = data.readUInt32BE(pos + 4);
    const start = pos + RECORD_HEADER;
    if (start + len > data.length) {
      problem = `torn record at byte ${pos} (${len} bytes announced, ${data.length - start} present)`;
      break;
    }
    const payload = data.subarray(start, start + len);
    if (verify && crc32(payload) !== sum) {
      problem = `checksum mismatch in the record at byte ${pos}`;
      break;
    }
    if (!header) {
      try {
        header = JSON.parse(payload.toString('utf8'));
      } catch {
        return null;
      }
    } else {
      if (verify) {
        try {
          countEntries(payload);
        } catch (err) {
          problem = `record at byte ${pos} holds invalid entries: ${(err as Error).message}`;
          break;
        }
      }
      entries.push(payload);
    }
    pos = start + len;
  }
  if (!header || typeof header.tag !== 'string') return null;
  return { tag: header.tag, createdAt: Number(header.createdAt) || Date.now(), entries, goodLength: pos, problem };
}

export class DiskBuffer extends BaseBuffer {
  private readonly fds = new Map<string, number>();
  private readonly dirty = new Set<number>();
  private readonly syncTimer: NodeJS.Timeout | null;

  private constructor(private readonly options: DiskBufferOptions) {
    super(options);
    this.syncTimer =
      options.fsync === 'interval'
        ? setInterval(() => {
            for (const fd of this.dirty) fs.fdatasync(fd, () => {});
            this.dirty.clear();
          }, options.fsyncIntervalMs)
        : null;
    this.syncTimer?.unref();
  }

  /** Opens the buffer directory, recovering every chunk left by an earlier run. */
  static open(options: DiskBufferOptions): { buffer: DiskBuffer; recovered: RecoveryReport[] } {
    fs.mkdirSync(options.path, { recursive: true });
    const buffer = new DiskBuffer(options);
    return { buffer, recovered: buffer.recover() };
  }

  private file(id: Buffer): string {
    return join(this.options.path, `${id.toString('hex')}${SUFFIX}`);
  }

  private recover(): RecoveryReport[] {
    const reports: RecoveryReport[] = [];
    const found: SealedChunk[] = [];
    for (const name of fs.readdirSync(this.options.path)) {
      if (!name.endsWith(SUFFIX)) continue;
      const path = join(this.options.path, name);
      const id = Buffer.from(name.slice(0, -SUFFIX.length), 'hex');
      const data = fs.readFileSync(path);
      const parsed = id.length === 16 ? parseFile(data, true) : null;
      if (!parsed) {
        fs.renameSync(path, `${path}.corrupt`);
        reports.push({
          file: name,
          chunks: 0,
          events: 0,
          skippedBytes: data.length,
          problem: 'unreadable header; file set aside as .corrupt',
        });
        continue;
      }
      if (parsed.goodLength < data.length) fs.truncateSync(path, parsed.goodLength);
      const events = parsed.entries.reduce((n, e) => n + countEntries(e), 0);
      const bytes = parsed.entries.reduce((n, e) => n + e.length, 0);
      if (events === 0) {
        fs.unlinkSync(path);
      } else {
        found.push({
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
      reports.push({ file: name, chunks: events ? 1 : 0, events, skippedBytes: data.length - parsed.goodLength, problem: parsed.problem });
    }
    found.sort((a, b) => a.createdAt - b.createdAt);
    for (const c of found) this.adopt(c);
    return reports;
  }

  protected newId(): Buffer {
    return randomBytes(16);
  }

  protected writeOpen(chunk: OpenChunk, parts: ForwardChunk[], isNew: boolean): number {
    const key = chunk.id.toString('hex');
    let fd = this.fds.get(key);
    const buffers: Buffer[] = [];
    try {
      if (fd === undefined || isNew) {
        fd = fs.openSync(this.file(chunk.id), 'a');
        this.fds.set(key, fd);
        buffers.push(...frame([Buffer.from(JSON.stringify({ v: 1, tag: chunk.tag, createdAt: chunk.createdAt }))]));
      }
      // Many small parts (Message mode) are joined first: one checksum call and one iovec beat hundreds.
      buffers.push(...frame(parts.length === 1 ? [parts[0].entries] : [Buffer.concat(parts.map((p) => p.entries))]));
      let written = 0;
      let total = 0;
      for (const b of buffers) total += b.length;
      while (written < total) written += fs.writevSync(fd, written === 0 ? buffers : remainingBuffers(buffers, written));
      this.dirty.add(fd);
      return total;
    } catch (err) {
      throw new RetryableError(
        BufferErrorCode.Io,
        `Writing to the buffer file ${this.file(chunk.id)} failed: ${(err as Error).message}.`,
        err,
      );
    }
  }

  protected async sync(): Promise<void> {
    if (this.options.fsync !== 'always' || this.dirty.size === 0) return;
    const fds = [...this.dirty];
    this.dirty.clear();
    await Promise.all(fds.map((fd) => new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())))));
  }

  protected sealStorage(chunk: OpenChunk): void {
    const key = chunk.id.toString('hex');
    const fd = this.fds.get(key);
    if (fd === undefined) return;
    this.fds.delete(key);
    const wasDirty = this.dirty.delete(fd);
    // Sealing changes no bytes: the data is already as safe as the policy made it.
    if (wasDirty && this.options.fsync === 'interval') fs.fdatasync(fd, () => fs.close(fd, () => {}));
    else fs.close(fd, () => {});
  }

  protected async readStorage(chunk: SealedChunk): Promise<Buffer[]> {
    // Checksums and entries were verified when the data was accepted or recovered; a read only splits records.
    const data = await fs.promises.readFile(this.file(chunk.id));
    const parsed = parseFile(data, false);
    if (!parsed) throw new RetryableError(BufferErrorCode.Io, `Buffer file ${this.file(chunk.id)} became unreadable.`);
    // A few large appends (PackedForward input) go out as they are, with no copy; many small ones
    // (Message mode) are joined: dozens of tiny parts held by the socket cost more memory than one copy.
    return parsed.entries.length <= MAX_SEND_PARTS ? parsed.entries : [Buffer.concat(parsed.entries)];
  }

  protected async removeStorage(chunk: SealedChunk): Promise<void> {
    await fs.promises.rm(this.file(chunk.id), { force: true });
  }

  protected removeStorageSync(chunk: SealedChunk): void {
    fs.rmSync(this.file(chunk.id), { force: true });
  }

  override async close(): Promise<void> {
    await super.close();
    if (this.syncTimer) clearInterval(this.syncTimer);
    for (const fd of this.dirty) fs.fdatasyncSync(fd);
    this.dirty.clear();
  }
}

function frame(payloads: Buffer[]): Buffer[] {
  let len = 0;
  let sum = 0;
  for (const p of payloads) {
    len += p.length;
    sum = crc32(p, sum);
  }
  const hdr = Buffer.allocUnsafe(RECORD_HEADER);
  hdr.writeUInt32BE(len, 0);
  hdr.writeUInt32BE(sum >>> 0, 4);
  return [hdr, ...payloads];
}
