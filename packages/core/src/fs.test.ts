import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyFilesystem, type Filesystem, realFilesystem, writeFileAtomic } from './fs';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-fs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('a fault fails matching calls only, by operation and path, until it is removed', async () => {
  const fs = new FaultyFilesystem();
  const remove = fs.inject({ ops: ['writev'], path: 'bad', code: 'ENOSPC' });
  const good = fs.openSync(join(dir, 'good'), 'a');
  const bad = fs.openSync(join(dir, 'bad'), 'a');
  expect(fs.writevSync(good, [Buffer.from('ok')])).toBe(2);
  expect(() => fs.writevSync(bad, [Buffer.from('no')])).toThrow(expect.objectContaining({ code: 'ENOSPC', syscall: 'writev' }));
  await expect(fs.writev(bad, [Buffer.from('no')])).rejects.toMatchObject({ code: 'ENOSPC', errno: -28 });
  await expect(fs.fdatasync(bad)).resolves.toBeUndefined();
  expect(fs.failures.get('writev')).toBe(2);
  remove();
  expect(fs.writevSync(bad, [Buffer.from('now')])).toBe(3);
  fs.closeSync(good);
  fs.closeSync(bad);
  expect(readFileSync(join(dir, 'bad'), 'utf8')).toBe('now');
});

test('times bounds a fault; clear removes every fault', async () => {
  const fs = new FaultyFilesystem();
  fs.inject({ ops: ['fdatasync'], code: 'EIO', times: 1 });
  const fd = await fs.open(join(dir, 'f'), 'a');
  await expect(fs.fdatasync(fd)).rejects.toMatchObject({ code: 'EIO' });
  await expect(fs.fdatasync(fd)).resolves.toBeUndefined();
  fs.inject({ code: 'EIO' });
  await expect(fs.writeFile(join(dir, 'g'), 'x')).rejects.toMatchObject({ code: 'EIO' });
  expect(() => fs.unlinkSync(join(dir, 'f'))).toThrow(/EIO/);
  fs.clear();
  await fs.writeFile(join(dir, 'g'), 'x');
  expect(await fs.readFile(join(dir, 'g'))).toEqual(Buffer.from('x'));
  await fs.close(fd);
});

test('an injected error reads like the one Node reports, naming the path', async () => {
  const fs = new FaultyFilesystem();
  fs.inject({ ops: ['open'], code: 'ENOSPC' });
  await expect(fs.open(join(dir, 'x'), 'w')).rejects.toThrow(/^ENOSPC: no space left on device, open '.*x' \(injected fault\)$/);
});

test('readdirTypes lists entries with their types and fails like readdir', async () => {
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'file'), '');
  const fs = new FaultyFilesystem();
  const entries = await fs.readdirTypes(dir);
  expect(entries.map((e) => [e.name, e.isDirectory()]).sort()).toEqual([
    ['file', false],
    ['sub', true],
  ]);
  fs.inject({ ops: ['readdir'], code: 'EIO' });
  await expect(fs.readdirTypes(dir)).rejects.toMatchObject({ code: 'EIO' });
});

describe('writeFileAtomic', () => {
  const parts = [Buffer.from('alpha '), new Uint8Array(Buffer.from('beta ')), Buffer.from('gamma'.repeat(1000))];

  test('writes every part even when each writev takes only a few bytes', async () => {
    const short: Filesystem = { ...realFilesystem, writev: (fd, buffers) => realFilesystem.writev(fd, [buffers[0].subarray(0, 7)]) };
    await writeFileAtomic(join(dir, 'f'), parts, undefined, short);
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe(`alpha beta ${'gamma'.repeat(1000)}`);
    await writeFileAtomic(join(dir, 'f'), 'replaced', undefined, short);
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe('replaced');
    expect(readdirSync(dir)).toEqual(['f']);
  });

  test.each(['open', 'writev', 'fdatasync', 'close', 'rename'] as const)(
    'a failed %s rejects with its error and leaves the old file and no temp file',
    async (op) => {
      writeFileSync(join(dir, 'f'), 'old');
      const fs = new FaultyFilesystem();
      fs.inject({ ops: [op], code: 'EIO', times: 1 });
      await expect(writeFileAtomic(join(dir, 'f'), parts, undefined, fs)).rejects.toMatchObject({ code: 'EIO', syscall: op });
      expect(readFileSync(join(dir, 'f'), 'utf8')).toBe('old');
      expect(readdirSync(dir)).toEqual(['f']);
    },
  );
});
