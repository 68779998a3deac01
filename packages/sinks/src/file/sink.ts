/**
 * File sink: gzip NDJSON objects in the same Hive layout as S3, on a local
 * directory (the single-node default). Each object is written to a temp file
 * (its gzip members with one writev), fdatasynced and renamed, so an object
 * is either whole or absent and a replay replaces it. Temp files a crash
 * left behind are removed at start. All file I/O goes through `options.fs`
 * (the real filesystem by default), so tests inject disk faults.
 */
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { dirname, join } from 'node:path';
import { Codes, type Filesystem, RetryableError, realFilesystem, writeFileAtomic } from '@tributary/core';
import type { ObjectSink, SinkObject } from '@tributary/core';
import { runConcurrently } from '../concurrent';

/** Objects written at once: enough to overlap fdatasyncs, few enough to bound open descriptors. */
const CONCURRENT_OBJECTS = 8;
const TEMP_SUFFIX = /\.[0-9a-f]{8}\.tmp$/;

export interface FileSinkOptions {
  name: string;
  path: string;
  gzipLevel: number;
  /** Where objects are written; the real filesystem when absent. */
  fs?: Filesystem;
}

export class FileSink implements ObjectSink {
  readonly kind = 'objects' as const;
  readonly name: string;
  readonly gzipLevel: number;
  private readonly fs: Filesystem;

  constructor(private readonly options: FileSinkOptions) {
    this.name = options.name;
    this.gzipLevel = options.gzipLevel;
    this.fs = options.fs ?? realFilesystem;
  }

  /** Removes the temp files of writes a crash interrupted; returns how many. */
  async start(): Promise<number> {
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await this.fs.readdirTypes(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (TEMP_SUFFIX.test(e.name)) {
          await this.fs.unlink(p).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
          });
          removed++;
        }
      }
    };
    await walk(this.options.path);
    return removed;
  }

  /**
   * Writes every object. Rejects with a RetryableError (TRB_SINK_FILE) when
   * one cannot be written; the other writers stop taking objects, and the
   * promise settles only once none is in flight. Either way no object exists
   * partly under its final name (each is whole or absent), so the retry
   * overwrites whatever was written.
   */
  async put(objects: SinkObject[]): Promise<void> {
    try {
      await runConcurrently(objects, CONCURRENT_OBJECTS, (o) => this.write(o));
    } catch (err) {
      throw new RetryableError(
        Codes.TRB_SINK_FILE,
        `The file sink ${this.name} could not write under ${this.options.path}: ${(err as Error).message}.`,
        err,
      );
    }
  }

  private async write(object: SinkObject): Promise<void> {
    const target = join(this.options.path, object.path);
    await this.fs.mkdir(dirname(target));
    await writeFileAtomic(target, object.body, `${target}.${randomBytes(4).toString('hex')}.tmp`, this.fs);
  }

  async close(): Promise<void> {}
}
