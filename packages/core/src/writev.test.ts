import { remainingBuffers } from './writev';

test('remainingBuffers drops whole buffers and cuts the partly written one', () => {
  const bufs = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')];
  expect(remainingBuffers(bufs, 0).map(String)).toEqual(['abc', 'de', 'fgh']);
  expect(remainingBuffers(bufs, 4).map(String)).toEqual(['e', 'fgh']);
  expect(remainingBuffers(bufs, 5).map(String)).toEqual(['fgh']);
  expect(remainingBuffers(bufs, 8)).toEqual([]);
});
