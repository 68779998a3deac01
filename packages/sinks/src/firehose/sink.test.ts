import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirehoseClient } from '@aws-sdk/client-firehose';
import { silentLogger } from '@tributary/core';
import type { LineBatch } from '@tributary/core';
import { FirehoseSink } from './sink';

test('a put retried after a failure writes its dead letters once, and counts only its own rejects', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-fh-'));
  let calls = 0;
  const client = {
    send: async () => {
      if (calls++ === 0) throw Object.assign(new Error('throttled'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
      return { FailedPutCount: 0, RequestResponses: [{}] };
    },
    destroy: () => {},
  } as unknown as FirehoseClient;
  let counted = 0;
  const sink = new FirehoseSink({
    name: 'fh',
    client,
    deliveryStream: 's',
    logger: silentLogger,
    maxRecordBytes: 0,
    maxAttempts: 1,
    backoff: { initialMs: 1, maxMs: 1 },
    deadLetterPath: dir,
    onStats: (s) => {
      counted += s.deadLetters;
    },
  });
  const line = Buffer.from('{"a":1}\n');
  const batch: LineBatch = {
    parts: [line],
    lineEnds: [Uint32Array.from([line.length])],
    events: 1,
    deadLetters: [{ tag: 't', id: 'k#1', kind: 'depth', reason: 'nesting deeper than 512', raw: 'kg==' }],
  };
  try {
    await expect(sink.put(batch)).rejects.toMatchObject({ retriable: true });
    await sink.put(batch); // egress retries the same batch
    const lines = readFileSync(join(dir, 'fh.ndjson'), 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ reason: 'nesting deeper than 512' });
    expect(counted).toBe(0); // egress counted the encoder's dead letter already
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a call refused for good rejects the put only once the other calls settled, and no call starts after it', async () => {
  let calls = 0;
  let running = 0;
  const client = {
    send: async () => {
      if (++calls === 2) {
        throw Object.assign(new Error('no such stream'), { name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 400 } });
      }
      running++;
      await new Promise((r) => setTimeout(r, 50));
      running--;
      return { FailedPutCount: 0, RequestResponses: Array.from({ length: 500 }, () => ({})) };
    },
    destroy: () => {},
  } as unknown as FirehoseClient;
  const sink = new FirehoseSink({
    name: 'fh',
    client,
    deliveryStream: 's',
    logger: silentLogger,
    maxRecordBytes: 0,
    maxAttempts: 3,
    backoff: { initialMs: 1, maxMs: 1 },
    deadLetterPath: null,
  });
  // 5000 lines, one record each: ten PutRecordBatch calls of 500, four at a time.
  const line = Buffer.from('{"a":1}\n');
  const lines = 5000;
  const batch: LineBatch = {
    parts: [Buffer.concat(Array.from({ length: lines }, () => line))],
    lineEnds: [Uint32Array.from({ length: lines }, (_, i) => (i + 1) * line.length)],
    events: lines,
    deadLetters: [],
  };
  await expect(sink.put(batch)).rejects.toMatchObject({ code: 'TRB_SINK_FIREHOSE', retriable: true });
  expect(running).toBe(0);
  expect(calls).toBe(4);
  await new Promise((r) => setTimeout(r, 120));
  expect(calls).toBe(4);
});
