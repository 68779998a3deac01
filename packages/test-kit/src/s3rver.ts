/**
 * s3rver (a real S3 HTTP API on local disk) in this process, on a loopback
 * port, for tests of the aws_s3 sink. It can be stopped and started again on
 * the same port, so a test can take S3 away from a running sink and give it
 * back.
 */
import type { AddressInfo } from 'node:net';

// biome-ignore lint/suspicious/noExplicitAny: s3rver has no typings
const S3rver: any = require('s3rver');

export interface LocalS3 {
  /** http://127.0.0.1:<port>; path-style addressing (force_path_style: true). */
  endpoint: string;
  port: number;
  /** s3rver accepts only these keys. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Closes the listener and every open connection: requests are refused until `start`. Idempotent. */
  stop(): Promise<void>;
  /** Listens again on the same port, over the same directory (objects written before are still there). */
  start(): Promise<void>;
}

/** Starts s3rver over `directory` with `buckets` created, on a port of its own (or `port`). */
export async function startS3rver(opts: { directory: string; buckets: string[]; port?: number }): Promise<LocalS3> {
  const options = {
    address: '127.0.0.1',
    silent: true,
    directory: opts.directory,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  };
  let server = new S3rver({ ...options, port: opts.port ?? 0 });
  const { port } = (await server.run()) as AddressInfo;
  let running = true;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    async stop() {
      if (!running) return;
      running = false;
      server.httpServer.closeAllConnections();
      await server.close();
    },
    async start() {
      if (running) return;
      server = new S3rver({ ...options, port });
      await server.run();
      running = true;
    },
  };
}
