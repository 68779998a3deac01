import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
/**
 * S3 sink (@aws-sdk/client-s3): one gzip NDJSON object per tag and hour of a
 * batch, under Hive-style keys Athena partitions on. The key derives from the
 * batch's log position, so a replay overwrites the same object. The client is
 * injected (a real S3, MinIO, LocalStack or s3rver in tests).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { RetryableError } from '@tributary/core';
import type { StoredRecord } from '../log/durable-log';
import { type FieldNames, groupForObjects } from './ndjson';
import type { Sink } from './sink';

const gzipAsync = promisify(gzip);

export interface S3SinkOptions {
  name: string;
  client: S3Client;
  bucket: string;
  prefix: string;
  fields: FieldNames;
}

export class S3Sink implements Sink {
  readonly name: string;

  constructor(private readonly options: S3SinkOptions) {
    this.name = options.name;
  }

  async consume(records: StoredRecord[]): Promise<void> {
    const objects = groupForObjects(records, this.options.prefix.replace(/\/+$/, ''), this.options.fields);
    try {
      await Promise.all(
        [...objects].map(async ([key, lines]) =>
          this.options.client.send(
            new PutObjectCommand({
              Bucket: this.options.bucket,
              Key: key,
              Body: await gzipAsync(`${lines.join('\n')}\n`),
              ContentType: 'application/x-ndjson',
            }),
          ),
        ),
      );
    } catch (err) {
      throw new RetryableError(
        'TRB_SINK_S3',
        `PutObject to s3://${this.options.bucket}/${this.options.prefix} failed: ${(err as Error).message}.`,
        err,
      );
    }
  }

  async close(): Promise<void> {
    this.options.client.destroy();
  }
}
