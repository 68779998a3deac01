import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirehoseClient } from '@aws-sdk/client-firehose';
import { silentLogger } from '@tributary/core';
import type { LineBatch } from '../sink';
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
    deadLetters: [{ tag: 't', id: 'k#1', reason: 'nesting deeper than 512', raw: 'kg==' }],
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
