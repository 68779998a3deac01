import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyFilesystem, realFilesystem } from '@tributary/core';
import { EventTime, type ForwardChunk, encodeEntry } from '@tributary/forward-protocol';
import { chunkFileName, encodeAppend } from './chunk-file';
import { recoverChunks } from './recovery';

const t = new EventTime(1700000000, 0);
const part = (n: number): ForwardChunk => ({
  tag: 'app',
  entries: Buffer.concat(Array.from({ length: n }, (_, i) => encodeEntry(t, { i }))),
  count: n,
  mode: 'packed',
});
const id = (byte: number): Buffer => Buffer.alloc(16, byte);
/** Writes a chunk file of `appends` (event counts), created at `createdAt`; returns its bytes. */
function writeChunk(chunkId: Buffer, createdAt: number, appends: number[]): Buffer {
  const data = Buffer.concat(appends.flatMap((n, i) => encodeAppend({ tag: 'app', createdAt }, [part(n)], i === 0).buffers));
  writeFileSync(join(dir, chunkFileName(chunkId)), data);
  return data;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-recover-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('intact files come back as sealed chunks, oldest first, each reported', async () => {
  const newer = writeChunk(id(1), 2000, [3, 2]);
  writeChunk(id(2), 1000, [4]);
  writeFileSync(join(dir, 'acked-chunk-ids.journal'), 'not a chunk file');
  const { chunks, reports } = await recoverChunks(realFilesystem, dir);
  expect(chunks.map((c) => [c.id.toString('hex'), c.count, c.createdAt])).toEqual([
    [id(2).toString('hex'), 4, 1000],
    [id(1).toString('hex'), 5, 2000],
  ]);
  expect(chunks[1]).toMatchObject({
    tag: 'app',
    stored: newer.length,
    bytes: part(3).entries.length + part(2).entries.length,
    attempts: 0,
  });
  expect(reports).toHaveLength(2);
  expect(reports.every((r) => r.skippedBytes === 0 && r.problem === undefined && r.chunks === 1)).toBe(true);
});

test('a corrupt record: the file is cut back to the records before it, and the report says what and how much', async () => {
  const good = writeChunk(id(3), 1000, [2, 2]);
  const tail = Buffer.from([0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
  writeFileSync(join(dir, chunkFileName(id(3))), Buffer.concat([good, tail]));
  const { chunks, reports } = await recoverChunks(realFilesystem, dir);
  expect(reports).toEqual([
    {
      file: chunkFileName(id(3)),
      chunks: 1,
      events: 4,
      ids: 0,
      skippedBytes: tail.length,
      problem: expect.stringMatching(/checksum mismatch in the record at byte \d+/),
    },
  ]);
  expect(chunks).toHaveLength(1);
  expect(readFileSync(join(dir, chunkFileName(id(3)))).equals(good)).toBe(true);
});

test('an unreadable header sets the file aside as .corrupt; a file without events and an empty spare are removed', async () => {
  writeFileSync(join(dir, chunkFileName(id(4))), 'garbage');
  const headerOnly = encodeAppend({ tag: 'app', createdAt: 1 }, [], true).buffers;
  writeFileSync(join(dir, chunkFileName(id(5))), Buffer.concat(headerOnly.slice(0, 2)));
  writeFileSync(join(dir, chunkFileName(id(6))), '');
  writeFileSync(join(dir, 'abcd.chunk'), 'short id'); // not a 16-byte id: not ours to parse
  const { chunks, reports } = await recoverChunks(realFilesystem, dir);
  expect(chunks).toEqual([]);
  const byFile = new Map(reports.map((r) => [r.file, r]));
  expect(byFile.get(chunkFileName(id(4)))).toMatchObject({ chunks: 0, skippedBytes: 7, problem: expect.stringMatching(/corrupt/) });
  expect(byFile.get('abcd.chunk')).toMatchObject({ chunks: 0, problem: expect.stringMatching(/corrupt/) });
  expect(byFile.get(chunkFileName(id(5)))).toMatchObject({ chunks: 0, events: 0 });
  expect(byFile.has(chunkFileName(id(6)))).toBe(false); // a spare is no news
  expect(readdirSync(dir).sort()).toEqual([`${chunkFileName(id(4))}.corrupt`, 'abcd.chunk.corrupt']);
});

test('a file that cannot be repaired rejects recovery, leaving it as it was', async () => {
  const good = writeChunk(id(7), 1000, [2]);
  writeFileSync(join(dir, chunkFileName(id(7))), Buffer.concat([good, Buffer.from([1, 2, 3])]));
  const fs = new FaultyFilesystem();
  fs.inject({ ops: ['truncate'], code: 'EIO' });
  await expect(recoverChunks(fs, dir)).rejects.toMatchObject({ code: 'EIO' });
  expect(statSync(join(dir, chunkFileName(id(7)))).size).toBe(good.length + 3);
});
