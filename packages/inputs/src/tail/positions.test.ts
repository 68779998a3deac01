import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyFilesystem } from '@tributary/core';
import { type Position, PositionJournal } from './positions';

const dir = mkdtempSync(join(tmpdir(), 'positions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** No close fails in these tests unless one is injected: a report would fail them. */
const unexpected = (err: Error): never => {
  throw new Error(`unexpected report: ${err.message}`);
};

function position(id: string, pos: number, end = pos): Position {
  return { id, dev: 1, ino: 2, fpLen: 0, fpHash: 'x', path: `/var/log/${id}.log`, pos, end, seenAt: 0 };
}

test('the last record of a file wins; a torn last line (a crash mid-write) is ignored and cut off; forgotten files stay gone', () => {
  const path = join(dir, 'a.journal');
  const j = PositionJournal.open(path, unexpected);
  j.write([position('a', 0, 100), position('b', 5)]);
  j.write([position('a', 100)]);
  j.forget(['b']);
  j.close();
  appendFileSync(path, '{"id":"a","dev":1,"ino":2,"fpLen":0,"fpHash":"x","path":"/v","pos":1');
  const again = PositionJournal.open(path, unexpected);
  expect([...again.positions()]).toEqual([position('a', 100)]);
  expect(again.corruptLines).toBe(0); // a torn last line is what a crash leaves: not corruption
  again.close();
  expect(readFileSync(path, 'utf8')).toBe(`${JSON.stringify(position('a', 100))}\n`);
});

test('a whole line that does not parse is counted, and it and what follows are dropped', () => {
  const path = join(dir, 'c.journal');
  const j = PositionJournal.open(path, unexpected);
  j.write([position('a', 10)]);
  j.close();
  appendFileSync(path, `garbage\n${JSON.stringify(position('a', 20))}\n`);
  const again = PositionJournal.open(path, unexpected);
  expect(again.corruptLines).toBe(2);
  expect([...again.positions()]).toEqual([position('a', 10)]);
  again.close();
});

test('the journal is rewritten to its live records once it grows past 1 MiB and four times their size', () => {
  const path = join(dir, 'b.journal');
  const j = PositionJournal.open(path, unexpected);
  for (let i = 0; i < 20_000; i++) j.write([position('a', i), position('b', i)]);
  j.close();
  expect(statSync(path).size).toBeLessThan(1.1 * 1024 * 1024);
  const again = PositionJournal.open(path, unexpected);
  expect([...again.positions()].map((p) => p.pos)).toEqual([19_999, 19_999]);
  again.close();
});

describe('a close that fails without deciding its step is reported, not thrown, and never replaces the error the step throws', () => {
  /** A journal whose second line does not parse, so the open compacts it (temp file, fdatasync, rename). */
  const corrupt = (name: string): string => {
    const path = join(dir, name);
    const j = PositionJournal.open(path, unexpected);
    j.write([position('a', 10)]);
    j.close();
    appendFileSync(path, 'garbage\n');
    return path;
  };

  test("the temp file's close after its fdatasync failed at open", () => {
    const path = corrupt('d.journal');
    const fs = new FaultyFilesystem();
    fs.inject({ ops: ['fdatasync'], path: '.tmp', code: 'ENOSPC' });
    fs.inject({ ops: ['close'], path: '.tmp', code: 'EIO' });
    const reports: Array<[string | undefined, string]> = [];
    expect(() => PositionJournal.open(path, (err, what) => reports.push([err.code, what]), fs)).toThrow(/ENOSPC/);
    expect(reports).toEqual([['EIO', expect.stringMatching(/^The temporary position journal could not be closed/)]]);
  });

  test("the old journal's close once its compacted copy replaced it", () => {
    const path = corrupt('e.journal');
    const fs = new FaultyFilesystem();
    fs.inject({ ops: ['close'], path: /e\.journal$/, code: 'EIO', times: 1 });
    const reports: Array<[string | undefined, string]> = [];
    const j = PositionJournal.open(path, (err, what) => reports.push([err.code, what]), fs);
    expect(reports).toEqual([['EIO', expect.stringMatching(/^The position journal replaced by its compacted copy could not be closed/)]]);
    j.write([position('a', 30)]);
    j.close();
    expect(readFileSync(path, 'utf8')).toBe(`${JSON.stringify(position('a', 10))}\n${JSON.stringify(position('a', 30))}\n`);
  });
});
