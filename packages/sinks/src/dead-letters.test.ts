import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RetryableError } from '@tributary/core';
import { DeadLetterFile } from './dead-letters';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-dl-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('appends one JSON line per dead letter, with its reason and time, to <dir>/<sink>.ndjson (the directory is made)', async () => {
  const file = new DeadLetterFile(join(dir, 'nested', 'dl'), 'fh');
  await file.append([{ line: '{"a":1}', reason: 'too large' }], new Date(0));
  await file.append([
    { line: '{"b":2}', reason: 'unencodable' },
    { line: '{"c":3}', reason: 'x' },
  ]);
  expect(file.file).toBe(join(dir, 'nested', 'dl', 'fh.ndjson'));
  const lines = readFileSync(file.file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(lines.map((l) => [l.line, l.reason])).toEqual([
    ['{"a":1}', 'too large'],
    ['{"b":2}', 'unencodable'],
    ['{"c":3}', 'x'],
  ]);
  expect(lines[0].at).toBe('1970-01-01T00:00:00.000Z');
});

test('a write that fails rejects with a retryable TRB_SINK_DEAD_LETTER naming the file, and leaves what was written', async () => {
  const file = new DeadLetterFile(join(dir, 'dl'), 'fh');
  await file.append([{ line: '1', reason: 'r' }]);
  const blocked = new DeadLetterFile(join(dir, 'blocker', 'dl'), 'fh');
  writeFileSync(join(dir, 'blocker'), 'a file where the directory should be');
  const err = await blocked.append([{ line: '2', reason: 'r' }]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RetryableError);
  expect((err as RetryableError).code).toBe('TRB_SINK_DEAD_LETTER');
  expect((err as Error).message).toContain(join(dir, 'blocker', 'dl', 'fh.ndjson'));
  expect(readFileSync(file.file, 'utf8').trimEnd().split('\n')).toHaveLength(1);
});

test('nothing to write touches nothing', async () => {
  const file = new DeadLetterFile(join(dir, 'never'), 'fh');
  await file.append([]);
  expect(() => readFileSync(file.file)).toThrow(/ENOENT/);
});
