/**
 * The S3 sink's put when one PutObject fails: it rejects with a RetryableError
 * (TRB_SINK_S3) only once no other PutObject of the put is still running, and
 * it starts no new one after the failure, so nothing of a rejected put runs on
 * beside egress's retry of the same objects. The client is a recording stand-in
 * (the happy path and an unreachable S3 run in the sink contract, on s3rver).
 */
import type { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { RetryableError } from '@tributary/core';
import type { SinkObject } from '@tributary/core';
import { S3Sink } from './sink';

const object = (n: number): SinkObject => ({
  path: `app/dt=2026-11-27/hour=13/part-0-${n}.json.gz`,
  body: [Buffer.from(`${n}`)],
  events: 1,
});

/** A client whose PutObject of `failKey` fails at once and every other one takes `ms`. */
function recordingClient(failKey: string, ms: number) {
  const state = { started: [] as string[], running: 0 };
  const client = {
    async send(command: PutObjectCommand) {
      const key = String(command.input.Key);
      state.started.push(key);
      if (key === failKey) throw Object.assign(new Error('SlowDown'), { name: 'SlowDown' });
      state.running++;
      await new Promise((r) => setTimeout(r, ms));
      state.running--;
      return {};
    },
    destroy() {},
  };
  return { client: client as unknown as S3Client, state };
}

test('a failed PutObject rejects the put only once the others in flight settled, and no new one starts after it', async () => {
  const objects = Array.from({ length: 40 }, (_, n) => object(n));
  const { client, state } = recordingClient(`logs/${objects[1].path}`, 50);
  const sink = new S3Sink({ name: 's3', client, bucket: 'lake', prefix: 'logs/', gzipLevel: 1 });

  const err = await sink.put(objects).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RetryableError);
  expect((err as RetryableError).code).toBe('TRB_SINK_S3');
  expect((err as Error).message).toMatch(/SlowDown/);
  // Settled: nothing of this put is still sending.
  expect(state.running).toBe(0);
  // The failure came second of the first eight; the other workers finished what they held and took nothing more.
  expect(state.started.length).toBeLessThanOrEqual(8);
  await new Promise((r) => setTimeout(r, 120));
  expect(state.started.length).toBeLessThanOrEqual(8);
});
