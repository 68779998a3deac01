import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineCounter } from './fluent-bit';

describe('LineCounter', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trb-linecounter-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('counts 0 before the directory exists', () => {
    expect(new LineCounter(join(dir, 'missing')).count()).toBe(0);
  });

  test('counts whole lines across files and appends, a partial line only once it is ended', () => {
    const counter = new LineCounter(dir);
    writeFileSync(join(dir, 'a'), 'one\ntwo\nthr');
    writeFileSync(join(dir, 'b'), 'x\n');
    expect(counter.count()).toBe(3);
    appendFileSync(join(dir, 'a'), 'ee\nfour\n');
    expect(counter.count()).toBe(5);
    expect(counter.count()).toBe(5);
  });

  test('counts lines in a file larger than its read buffer', () => {
    const line = `${'y'.repeat(199)}\n`;
    writeFileSync(join(dir, 'big'), line.repeat(20_000)); // 4 MB, four 1 MiB reads that end mid-line
    expect(new LineCounter(dir).count()).toBe(20_000);
  });
});
