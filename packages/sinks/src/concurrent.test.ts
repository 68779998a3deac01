import { runConcurrently } from './concurrent';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('every item runs, at most `limit` at once, in order of start', async () => {
  const started: number[] = [];
  let running = 0;
  let most = 0;
  await runConcurrently([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 3, async (n) => {
    started.push(n);
    most = Math.max(most, ++running);
    await sleep(5);
    running--;
  });
  expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(most).toBe(3);
});

test('after a failure no item starts, and the rejection (the first error) waits for those running', async () => {
  const started: number[] = [];
  let running = 0;
  const err = await runConcurrently([0, 1, 2, 3, 4, 5, 6, 7], 4, async (n) => {
    started.push(n);
    if (n === 1 || n === 2) throw new Error(`item ${n} failed`);
    running++;
    await sleep(30);
    running--;
  }).then(
    () => null,
    (e: Error) => e,
  );
  expect(err?.message).toBe('item 1 failed');
  expect(running).toBe(0);
  expect(started).toEqual([0, 1, 2, 3]);
});

test('no items: resolves at once; a failure that is not an Error is passed on as it is', async () => {
  await expect(runConcurrently([], 4, async () => {})).resolves.toBeUndefined();
  await expect(
    runConcurrently([1], 4, async () => {
      throw 'refused';
    }),
  ).rejects.toBe('refused');
});
