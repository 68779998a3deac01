/**
 * File sink: gzip NDJSON objects in the same Hive layout as S3, on a local
 * directory (the single-node default). Written to a temp file, fsynced and
 * renamed, so an object is either whole or absent, and a replay replaces it.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { RetryableError } from '@tributary/core';
import type { StoredRecord } from '../log/durable-log';
import { type FieldNames, groupForObjects } from './ndjson';
import type { Sink } from './sink';

const gzipAsync = promisify(gzip);

export class FileSink implements Sink {
  readonly name: string;

  constructor(private readonly options: { name: string; path: string; fields: FieldNames }) {
    this.name = options.name;
  }

  async consume(records: StoredRecord[]): Promise<void> {
    try {
      for (const [key, lines] of groupForObjects(records, '', this.options.fields)) {
        const target = join(this.options.path, key);
        await fs.promises.mkdir(dirname(target), { recursive: true });
        const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
        const handle = await fs.promises.open(tmp, 'w');
        try {
          await handle.writeFile(await gzipAsync(`${lines.join('\n')}\n`));
          await handle.datasync();
        } finally {
          await handle.close();
        }
        await fs.promises.rename(tmp, target);
      }
    } catch (err) {
      throw new RetryableError(
        'TRB_SINK_FILE',
        `The file sink ${this.name} could not write under ${this.options.path}: ${(err as Error).message}.`,
        err,
      );
    }
  }

  async close(): Promise<void> {}
}
