/**
 * File sink: gzip NDJSON objects in the same Hive layout as S3, on a local
 * directory (the single-node default). Each object is written to a temp file
 * (its gzip members with one writev), fdatasynced and renamed, so an object
 * is either whole or absent and a replay replaces it. Temp files a crash
 * left behind are removed at start.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { RetryableError, writeFileAtomic } from '@tributary/core';
import type { ObjectSink, SinkObject } from '../sink';

/** Objects written at once: enough to overlap fdatasyncs, few enough to bound open descriptors. */
const CONCURRENT_OBJECTS = 8;
const TEMP_SUFFIX = /\.[0-9a-f]{8}\.tmp$/;

export interface FileSinkOptions {
  name: string;
  path: string;
  gzipLevel: number;
}

export class FileSink implements ObjectSink {
  readonly kind = 'objects' as const;
  readonly name: string;
  readonly gzipLevel: number;

  constructor(private readonly options: FileSinkOptions) {
    this.name = options.name;
    this.gzipLevel = options.gzipLevel;
  }

  /** Removes the temp files of writes a crash interrupted; returns how many. */
  async start(): Promise<number> {
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fs.promises.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (TEMP_SUFFIX.test(e.name)) {
          await fs.promises.rm(p, { force: true });
          removed++;
        }
      }
    };
    await walk(this.options.path);
    return removed;
  }

  async put(objects: SinkObject[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < objects.length) await this.write(objects[next++]);
    };
    try {
      await Promise.all(Array.from({ length: Math.min(CONCURRENT_OBJECTS, objects.length) }, worker));
    } catch (err) {
      throw new RetryableError(
        'TRB_SINK_FILE',
        `The file sink ${this.name} could not write under ${this.options.path}: ${(err as Error).message}.`,
        err,
      );
    }
  }

  private async write(object: SinkObject): Promise<void> {
    const target = join(this.options.path, object.path);
    await fs.promises.mkdir(dirname(target), { recursive: true });
    await writeFileAtomic(target, object.body, `${target}.${randomBytes(4).toString('hex')}.tmp`);
  }

  async close(): Promise<void> {}
}
