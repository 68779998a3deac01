import { remainingBuffers, writevAll, writevAllSync } from './writev';

test('remainingBuffers drops whole buffers and cuts the partly written one', () => {
  const bufs = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')];
  expect(remainingBuffers(bufs, 0).map(String)).toEqual(['abc', 'de', 'fgh']);
  expect(remainingBuffers(bufs, 4).map(String)).toEqual(['e', 'fgh']);
  expect(remainingBuffers(bufs, 5).map(String)).toEqual(['fgh']);
  expect(remainingBuffers(bufs, 8)).toEqual([]);
});

test('writevAllSync and writevAll write what is left after a short write, and fail with EIO (not spin) on a write of nothing', async () => {
  const got: string[] = [];
  const positions: Array<number | undefined> = [];
  let calls = 0;
  const limits = [2, 3, 0];
  const fs = {
    writevSync: (_fd: number, bufs: Buffer[], position?: number) => {
      positions.push(position);
      const n = Math.min(limits[calls++] ?? 100, Buffer.concat(bufs).length);
      got.push(Buffer.concat(bufs).subarray(0, n).toString());
      return n;
    },
    writev: async (fd: number, bufs: Buffer[]) => fs.writevSync(fd, bufs),
  };
  const bufs = [Buffer.from('abc'), Buffer.from('defg')];
  expect(() => writevAllSync(fs, 7, bufs, 7, 100)).toThrow(/EIO: a write to descriptor 7 wrote nothing with 2 of 7 bytes left/);
  expect(got).toEqual(['ab', 'cde', '']);
  expect(positions).toEqual([100, 102, 105]);
  calls = 0;
  got.length = 0;
  await expect(writevAll(fs, 7, bufs)).rejects.toMatchObject({ code: 'EIO', syscall: 'writev' });
  expect(got).toEqual(['ab', 'cde', '']);
  calls = 3; // past the short writes: whole
  got.length = 0;
  writevAllSync(fs, 7, bufs, 7);
  expect(got).toEqual(['abcdefg']);
});
