import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyFilesystem } from './fs';

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
