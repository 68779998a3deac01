/**
 * One contract suite for every registered sink (see __fixtures__/sink-contract.ts):
 * the file sink on a temp directory, aws_s3 against s3rver in this process,
 * aws_firehose against the project's Firehose test endpoint.
 */
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startFirehoseEndpoint, startS3rver } from '@tributary/test-kit';
import { type SinkHarness, sinkContract } from './__fixtures__/sink-contract';
import { fileSink } from './file/config';
import { firehoseSink } from './firehose/config';
import { sinkRegistry } from './registry';
import { s3Sink } from './s3/config';

function walk(root: string, dir = root, out = new Map<string, Buffer>()): Map<string, Buffer> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(root, p, out);
    else out.set(relative(root, p), readFileSync(p));
  }
  return out;
}

const file: SinkHarness = {
  spec: fileSink,
  async start(dir) {
    const out = join(dir, 'out');
    return {
      config: { name: 'contract', type: 'file', path: out },
      objects: async () => walk(out),
      // A regular file where the output directory should be: every write fails as on a broken disk.
      fail: async () => {
        rmSync(out, { recursive: true, force: true });
        writeFileSync(out, 'not a directory');
      },
      restore: async () => rmSync(out, { force: true }),
      stop: async () => {},
    };
  },
};

const s3: SinkHarness = {
  spec: s3Sink,
  async start(dir) {
    const server = await startS3rver({ directory: join(dir, 's3'), buckets: ['lake'] });
    const client = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: server.credentials });
    return {
      config: {
        name: 'contract',
        type: 'aws_s3',
        bucket: 'lake',
        prefix: 'tributary/',
        endpoint: server.endpoint,
        force_path_style: true,
        access_key_id: server.credentials.accessKeyId,
        secret_access_key: server.credentials.secretAccessKey,
      },
      async objects() {
        const out = new Map<string, Buffer>();
        const list = await client.send(new ListObjectsV2Command({ Bucket: 'lake' }));
        for (const o of list.Contents ?? []) {
          const body = await (await client.send(new GetObjectCommand({ Bucket: 'lake', Key: o.Key }))).Body?.transformToByteArray();
          out.set(String(o.Key).replace(/^tributary\//, ''), Buffer.from(body as Uint8Array));
        }
        return out;
      },
      fail: () => server.stop(), // the same port, refusing connections: S3 unreachable
      restore: () => server.start(),
      async stop() {
        client.destroy();
        await server.stop();
      },
    };
  },
};

const firehose: SinkHarness = {
  spec: firehoseSink,
  async start(dir) {
    const endpoint = await startFirehoseEndpoint(join(dir, 'firehose'));
    return {
      config: {
        name: 'contract',
        type: 'aws_firehose',
        delivery_stream: 'contract',
        endpoint: endpoint.url,
        access_key_id: 'test',
        secret_access_key: 'test',
        max_attempts: 3,
      },
      lines: async () => [...endpoint.lines()],
      fail: async () => endpoint.throttleNext(1000), // more than max_attempts: the put gives up, retryable
      restore: async () => endpoint.throttleNext(0),
      stop: () => endpoint.close(),
    };
  },
};

const harnesses = [file, s3, firehose];

test('every registered sink type has a harness here, so none skips the contract', () => {
  expect(harnesses.map((h) => h.spec.type).sort()).toEqual(sinkRegistry.map((s) => s.type).sort());
});

for (const h of harnesses) sinkContract(h);
