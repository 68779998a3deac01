import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyFilesystem, type FsOp, RetryableError } from '@tributary/core';
import { LogErrorCode } from '../durable-log';
import { OffsetStore } from './offset-store';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-offsets-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('a saved position is read back by the next store; an unknown group is at 0', async () => {
  const store = new OffsetStore(new FaultyFilesystem(), dir);
  await store.load(100);
  await store.save('g', 42);
  expect(store.committed('g')).toBe(42);
  const again = new OffsetStore(new FaultyFilesystem(), dir);
  await again.load(100);
  expect(again.committed('g')).toBe(42);
  expect(again.committed('other')).toBe(0);
  expect(again.unreadable('g')).toBeNull();
});

test.each<[FsOp, string]>([
  ['open', 'ENOSPC'],
  ['writev', 'ENOSPC'],
  ['fdatasync', 'EIO'],
  ['rename', 'EIO'],
])(
  'a save whose %s fails (%s) rejects retryably and leaves the old position, on disk and in memory, and no temp file',
  async (op, code) => {
    const fs = new FaultyFilesystem();
    const store = new OffsetStore(fs, dir);
    await store.load(100);
    await store.save('g', 10);
    const before = readFileSync(join(dir, 'g.json'), 'utf8');
    const remove = fs.inject({ ops: [op], code });
    const err = await store.save('g', 20).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({ code: LogErrorCode.Commit });
    expect((err as Error).message).toMatch(new RegExp(`offset 20.*${code}`));
    expect(fs.failures.get(op)).toBe(1);
    expect(store.committed('g')).toBe(10);
    expect(readFileSync(join(dir, 'g.json'), 'utf8')).toBe(before);
    expect(readdirSync(dir)).toEqual(['g.json']);
    remove();
    await store.save('g', 20);
    const again = new OffsetStore(fs, dir);
    await again.load(100);
    expect(again.committed('g')).toBe(20);
  },
);

test('a file that is torn or out of range is unreadable (not offset 0), counts as 0, and spares the other groups', async () => {
  writeFileSync(join(dir, 'torn.json'), '{"offset": 1');
  writeFileSync(join(dir, 'far.json'), '{"offset": 101}');
  writeFileSync(join(dir, 'ok.json'), '{"offset": 100}');
  writeFileSync(join(dir, 'ok.json.tmp'), '{"offset": 7}');
  const store = new OffsetStore(new FaultyFilesystem(), dir);
  await store.load(100);
  expect(store.unreadable('torn')).toMatch(/torn\.json cannot be read/);
  expect(store.unreadable('far')).toMatch(/far\.json holds offset 101, not one within the log \(0\.\.100\)/);
  expect(store.unreadable('ok')).toBeNull();
  expect([store.committed('torn'), store.committed('far'), store.committed('ok')]).toEqual([0, 0, 100]);
  expect([...store.positions()].sort((a, b) => a - b)).toEqual([0, 0, 100]);
});

test('register counts a new group at 0 without touching a known one', async () => {
  const store = new OffsetStore(new FaultyFilesystem(), dir);
  await store.load(10);
  store.register('new');
  await store.save('old', 5);
  store.register('old');
  expect(store.committed('old')).toBe(5);
  expect([...store.positions()].sort()).toEqual([0, 5]);
  expect(readdirSync(dir)).toEqual(['old.json']);
});
