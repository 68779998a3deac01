/**
 * The file sink under injected disk faults (FaultyFilesystem over real
 * files): a put that cannot write or sync rejects with a RetryableError, no
 * object is ever partly under its final name, no temp file is left, and the
 * same put succeeds once the fault is cleared.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FaultyFilesystem, type FsOp, RetryableError } from '@tributary/core';
import type { SinkObject } from '@tributary/core';
import { FileSink } from './sink';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-file-sink-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** An object of `n` gzip members (~64 KiB each), so a write takes several writev buffers. */
function object(name: string, n = 3): SinkObject {
  const body = Array.from({ length: n }, (_, i) => gzipSync(Buffer.from(`${name} member ${i}\n`.repeat(4000)), { level: 0 }));
  return { path: `app/dt=2026-11-27/hour=13/${name}.json.gz`, body, events: n * 4000 };
}

/** Every file under `root`: relative path → bytes. */
function files(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return out;
}

const whole = (o: SinkObject) => Buffer.concat(o.body);

test.each<[FsOp, string]>([
  ['writev', 'ENOSPC'],
  ['writev', 'EIO'],
  ['fdatasync', 'EIO'],
  ['fdatasync', 'ENOSPC'],
  ['rename', 'EIO'],
])('%s failing with %s: put rejects retryably, leaves no partial object or temp file, and succeeds once cleared', async (op, code) => {
  const fs = new FaultyFilesystem();
  const sink = new FileSink({ name: 'out', path: dir, gzipLevel: 1, fs });
  const objects = ['a', 'b', 'c', 'd'].map((n) => object(n));
  const remove = fs.inject({ ops: [op], path: '/b.json.gz', code });
  const err = await sink.put(objects).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RetryableError);
  expect(err).toMatchObject({ code: 'TRB_SINK_FILE', retriable: true });
  expect((err as Error).message).toContain(code);
  expect(fs.failures.get(op)).toBe(1);
  // Whatever was written is whole under its final name; the failed object is absent; no temp file remains.
  const after = files(dir);
  expect(after.has(objects[1].path)).toBe(false);
  for (const [path, bytes] of after) {
    expect(path).toMatch(/\.json\.gz$/);
    expect(bytes.equals(whole(objects.find((o) => o.path === path) as SinkObject))).toBe(true);
  }

  remove();
  await sink.put(objects);
  const done = files(dir);
  expect([...done.keys()].sort()).toEqual(objects.map((o) => o.path).sort());
  for (const o of objects) expect(done.get(o.path)?.equals(whole(o))).toBe(true);
});

test('a replayed put overwrites an object with the same bytes, never appends to it', async () => {
  const sink = new FileSink({ name: 'out', path: dir, gzipLevel: 1, fs: new FaultyFilesystem() });
  const o = object('x');
  await sink.put([o]);
  await sink.put([o]);
  expect(files(dir).get(o.path)?.equals(whole(o))).toBe(true);
});

test('start removes the temp files a crash left (through the injected filesystem) and keeps objects', async () => {
  const sub = join(dir, 'app', 'dt=2026-11-27', 'hour=13');
  mkdirSync(sub, { recursive: true });
  writeFileSync(join(sub, 'p.json.gz'), 'object');
  writeFileSync(join(sub, 'p.json.gz.0123abcd.tmp'), 'torn');
  writeFileSync(join(dir, 'q.json.gz.deadbeef.tmp'), 'torn');
  const fs = new FaultyFilesystem();
  const sink = new FileSink({ name: 'out', path: dir, gzipLevel: 1, fs });
  const remove = fs.inject({ ops: ['unlink'], code: 'EIO' });
  await expect(sink.start()).rejects.toMatchObject({ code: 'EIO' });
  remove();
  expect(await sink.start()).toBe(2);
  expect([...files(dir).keys()]).toEqual([join('app', 'dt=2026-11-27', 'hour=13', 'p.json.gz')]);
  expect(await new FileSink({ name: 'none', path: join(dir, 'missing'), gzipLevel: 1 }).start()).toBe(0);
});
