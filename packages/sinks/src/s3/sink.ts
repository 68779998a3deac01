/**
 * S3 sink (@aws-sdk/client-s3): one PutObject per object egress cut, under
 * the sink's prefix. The key derives from the log position the object
 * starts at, so a replay overwrites the same object. The client is injected
 * (a real S3, MinIO, LocalStack or s3rver in tests).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Codes, RetryableError } from '@tributary/core';
import type { ObjectSink, SinkObject } from '@tributary/core';
import { runConcurrently } from '../concurrent';

/** PutObject calls in flight at once per sink. */
const CONCURRENT_PUTS = 8;

export interface S3SinkOptions {
  name: string;
  client: S3Client;
  bucket: string;
  prefix: string;
  gzipLevel: number;
}

export class S3Sink implements ObjectSink {
  readonly kind = 'objects' as const;
  readonly name: string;
  readonly gzipLevel: number;
  private readonly prefix: string;

  constructor(private readonly options: S3SinkOptions) {
    this.name = options.name;
    this.gzipLevel = options.gzipLevel;
    this.prefix = options.prefix.replace(/\/+$/, '');
  }

  /**
   * Puts every object. Rejects with a RetryableError (TRB_SINK_S3) when one
   * PutObject fails, once none is in flight (runConcurrently).
   */
  async put(objects: SinkObject[]): Promise<void> {
    try {
      await runConcurrently(objects, CONCURRENT_PUTS, (o) => this.putObject(o));
    } catch (err) {
      throw new RetryableError(
        Codes.TRB_SINK_S3,
        `PutObject to s3://${this.options.bucket}/${this.prefix} failed: ${(err as Error).message}.`,
        err,
      );
    }
  }

  private async putObject(o: SinkObject): Promise<void> {
    await this.options.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: this.prefix ? `${this.prefix}/${o.path}` : o.path,
        Body: o.body.length === 1 ? o.body[0] : Buffer.concat(o.body),
        ContentType: 'application/x-ndjson',
      }),
    );
  }

  async close(): Promise<void> {
    this.options.client.destroy();
  }
}
