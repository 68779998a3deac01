import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { tempDir } from './processes';
import { startS3rver } from './s3rver';

/** Resolves on a TCP connection to the port (closed at once), rejects with the connect error. */
function connectTo(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

test('s3rver stores objects, refuses connections while stopped, and keeps them across a restart on the same port', async () => {
  const dir = tempDir('kit-s3');
  const s3 = await startS3rver({ directory: join(dir, 's3'), buckets: ['lake'] });
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3.credentials,
    maxAttempts: 1,
  });
  const read = async (Key: string) =>
    (await client.send(new GetObjectCommand({ Bucket: 'lake', Key }))).Body?.transformToString('utf8') as Promise<string>;
  try {
    await client.send(new PutObjectCommand({ Bucket: 'lake', Key: 'a/1.txt', Body: 'one' }));
    expect(await read('a/1.txt')).toBe('one');

    await s3.stop();
    await s3.stop();
    await expect(client.send(new PutObjectCommand({ Bucket: 'lake', Key: 'a/2.txt', Body: 'two' }))).rejects.toThrow();
    await expect(connectTo(s3.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await s3.start();
    expect(await read('a/1.txt')).toBe('one');
    await client.send(new PutObjectCommand({ Bucket: 'lake', Key: 'a/2.txt', Body: 'two' }));
    expect(await read('a/2.txt')).toBe('two');
  } finally {
    client.destroy();
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
