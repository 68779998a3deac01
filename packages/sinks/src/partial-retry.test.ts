import { RetryableError } from '@tributary/core';
import { sendWithPartialRetry } from './partial-retry';

const options = (sleeps: number[], calls: Array<[number, number, boolean]>) => ({
  maxAttempts: 4,
  backoff: { initialMs: 100, maxMs: 1000 },
  code: 'TRB_SINK_ERROR' as const,
  destination: 'the test destination',
  onCall: (sent: number, failed: number, throttled: boolean) => calls.push([sent, failed, throttled]),
  sleep: async (ms: number) => {
    sleeps.push(ms);
  },
});

test('only the refused records are sent again, until all are accepted', async () => {
  const sent: number[][] = [];
  const sleeps: number[] = [];
  const calls: Array<[number, number, boolean]> = [];
  let round = 0;
  await sendWithPartialRetry(
    [1, 2, 3, 4, 5],
    async (records) => {
      sent.push([...records]);
      round++;
      if (round === 1) return { failed: records.filter((r) => r % 2 === 0) };
      if (round === 2) return { failed: records, throttled: true };
      return { failed: [] };
    },
    options(sleeps, calls),
  );
  expect(sent).toEqual([
    [1, 2, 3, 4, 5],
    [2, 4],
    [2, 4],
  ]);
  expect(calls).toEqual([
    [5, 2, false],
    [2, 2, true],
    [2, 0, false],
  ]);
  expect(sleeps).toHaveLength(2);
  for (const [i, ms] of sleeps.entries()) expect(ms).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** i));
});

test('records still refused after the last attempt reject the batch as retryable, naming how many and where', async () => {
  const sent: number[][] = [];
  const sleeps: number[] = [];
  const err = await sendWithPartialRetry(
    ['a', 'b', 'c'],
    async (records) => {
      sent.push([...records]);
      return { failed: records.slice(0, 1) };
    },
    options(sleeps, []),
  ).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RetryableError);
  expect((err as RetryableError).code).toBe('TRB_SINK_ERROR');
  expect((err as Error).message).toBe('1 of 3 records still failed after 4 attempts to the test destination; the batch will be retried.');
  expect(sent).toEqual([['a', 'b', 'c'], ['a'], ['a'], ['a']]);
  expect(sleeps).toHaveLength(3);
});

test('a send that throws stops at once, with its own error (a refusal no retry passes)', async () => {
  let calls = 0;
  const refusal = new Error('no such stream');
  await expect(
    sendWithPartialRetry(
      [1],
      async () => {
        calls++;
        throw refusal;
      },
      options([], []),
    ),
  ).rejects.toBe(refusal);
  expect(calls).toBe(1);
});
