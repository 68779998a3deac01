/**
 * The filesystem seam (after Vector's `Filesystem`): the few file calls the
 * storage components make, behind one interface, so a test can make any of
 * them fail (EIO, ENOSPC, a failed fdatasync) for chosen paths and then clear
 * the fault, on real files.
 *
 * Asynchronous calls return promises. The synchronous ones exist where a
 * blocking call is the design: page-cache appends on the hot path (a few
 * microseconds, and the order of appends to one file stays trivial), the
 * small steps that must not interleave with other appends (a rename that swaps
 * a file, a truncate that cuts off a failed append), and syncs at exit.
 *
 * `realFilesystem` is `node:fs`; `FaultyFilesystem` wraps any Filesystem.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { writevAll } from './writev';

export interface Filesystem {
  open(path: string, flags: string): Promise<number>;
  /** Reads into `buffer`; resolves with the bytes read (0 at the end). */
  read(fd: number, buffer: Buffer, offset: number, length: number, position: number | null): Promise<number>;
  /** Resolves with the bytes written, which may be fewer than asked. */
  writev(fd: number, buffers: Buffer[], position?: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  close(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Creates the directory and its parents; no error when it exists. */
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  /** `readdir` with each entry's type (one call, no stat per entry). */
  readdirTypes(path: string): Promise<fs.Dirent[]>;
  stat(path: string): Promise<fs.Stats>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer | string): Promise<void>;
  truncate(path: string, length: number): Promise<void>;

  openSync(path: string, flags: string): number;
  /** Returns the bytes written, which may be fewer than asked. */
  writevSync(fd: number, buffers: Buffer[], position?: number): number;
  ftruncateSync(fd: number, length: number): void;
  fdatasyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
}

const pOpen = promisify(fs.open);
const pRead = promisify(fs.read);
const pWritev = promisify(fs.writev);
const pFdatasync = promisify(fs.fdatasync);
const pClose = promisify(fs.close);

export const realFilesystem: Filesystem = {
  open: (path, flags) => pOpen(path, flags),
  read: (fd, buffer, offset, length, position) => pRead(fd, buffer, offset, length, position).then((r) => r.bytesRead),
  writev: (fd, buffers, position) => pWritev(fd, buffers, position).then((r) => r.bytesWritten),
  fdatasync: (fd) => pFdatasync(fd),
  close: (fd) => pClose(fd),
  rename: (from, to) => fs.promises.rename(from, to),
  unlink: (path) => fs.promises.unlink(path),
  mkdir: (path) => fs.promises.mkdir(path, { recursive: true }).then(() => undefined),
  readdir: (path) => fs.promises.readdir(path),
  readdirTypes: (path) => fs.promises.readdir(path, { withFileTypes: true }),
  stat: (path) => fs.promises.stat(path),
  readFile: (path) => fs.promises.readFile(path),
  writeFile: (path, data) => fs.promises.writeFile(path, data),
  truncate: (path, length) => fs.promises.truncate(path, length),
  openSync: (path, flags) => fs.openSync(path, flags),
  writevSync: (fd, buffers, position) => fs.writevSync(fd, buffers, position),
  ftruncateSync: (fd, length) => fs.ftruncateSync(fd, length),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (from, to) => fs.renameSync(from, to),
  unlinkSync: (path) => fs.unlinkSync(path),
};

/** An operation a fault can target: a Filesystem method name without `Sync` (`writev` matches writev and writevSync). */
export type FsOp =
  | 'open'
  | 'read'
  | 'writev'
  | 'ftruncate'
  | 'fdatasync'
  | 'close'
  | 'rename'
  | 'unlink'
  | 'mkdir'
  | 'readdir'
  | 'stat'
  | 'readFile'
  | 'writeFile'
  | 'truncate';

export interface Fault {
  /** Operations that fail; all when absent. */
  ops?: FsOp[];
  /** Fails only calls on paths containing this text or matching this pattern (for fd calls: the path the fd was opened with). */
  path?: string | RegExp;
  /** The errno code the call fails with, as Node reports it: 'EIO', 'ENOSPC', … */
  code: string;
  /** Fails this many calls, then stops matching; forever when absent. */
  times?: number;
}

/** errno and message of the codes a fault can carry, as Node reports them on Linux. */
const ERRNO: Record<string, [number, string]> = {
  EIO: [-5, 'i/o error'],
  ENOSPC: [-28, 'no space left on device'],
  EACCES: [-13, 'permission denied'],
  EROFS: [-30, 'read-only file system'],
  EDQUOT: [-122, 'disk quota exceeded'],
  EBADF: [-9, 'bad file descriptor'],
};

/**
 * A Filesystem that fails chosen calls. `inject` adds a fault (the newest
 * matching fault wins) and returns its remover; `clear` removes them all;
 * `failures` counts calls failed so far, by operation.
 */
export class FaultyFilesystem implements Filesystem {
  private faults: Array<Fault & { left: number }> = [];
  /** Path each open descriptor was opened with, so fd calls can be matched by path. */
  private readonly paths = new Map<number, string>();
  readonly failures = new Map<FsOp, number>();

  constructor(private readonly inner: Filesystem = realFilesystem) {}

  inject(fault: Fault): () => void {
    const entry = { ...fault, left: fault.times ?? Number.POSITIVE_INFINITY };
    this.faults.unshift(entry);
    return () => {
      this.faults = this.faults.filter((f) => f !== entry);
    };
  }

  clear(): void {
    this.faults = [];
  }

  /** The error a matching fault produces for this call, or null (counting the call against the fault). */
  private fault(op: FsOp, target: string | number): NodeJS.ErrnoException | null {
    const path = typeof target === 'number' ? (this.paths.get(target) ?? '') : target;
    for (const f of this.faults) {
      if (f.left <= 0 || (f.ops && !f.ops.includes(op))) continue;
      if (f.path !== undefined && !(typeof f.path === 'string' ? path.includes(f.path) : f.path.test(path))) continue;
      f.left--;
      this.failures.set(op, (this.failures.get(op) ?? 0) + 1);
      const [errno, text] = ERRNO[f.code] ?? [undefined, 'injected fault'];
      const err: NodeJS.ErrnoException = new Error(`${f.code}: ${text}, ${op} '${path}' (injected fault)`);
      err.code = f.code;
      err.errno = errno;
      err.syscall = op;
      err.path = path;
      return err;
    }
    return null;
  }

  private async run<T>(op: FsOp, target: string | number, call: () => Promise<T>): Promise<T> {
    const err = this.fault(op, target);
    if (err) throw err;
    return call();
  }

  private runSync<T>(op: FsOp, target: string | number, call: () => T): T {
    const err = this.fault(op, target);
    if (err) throw err;
    return call();
  }

  open(path: string, flags: string): Promise<number> {
    return this.run('open', path, async () => {
      const fd = await this.inner.open(path, flags);
      this.paths.set(fd, path);
      return fd;
    });
  }
  read(fd: number, buffer: Buffer, offset: number, length: number, position: number | null): Promise<number> {
    return this.run('read', fd, () => this.inner.read(fd, buffer, offset, length, position));
  }
  writev(fd: number, buffers: Buffer[], position?: number): Promise<number> {
    return this.run('writev', fd, () => this.inner.writev(fd, buffers, position));
  }
  fdatasync(fd: number): Promise<void> {
    return this.run('fdatasync', fd, () => this.inner.fdatasync(fd));
  }
  close(fd: number): Promise<void> {
    return this.run('close', fd, async () => {
      this.paths.delete(fd);
      await this.inner.close(fd);
    });
  }
  rename(from: string, to: string): Promise<void> {
    return this.run('rename', from, () => this.inner.rename(from, to));
  }
  unlink(path: string): Promise<void> {
    return this.run('unlink', path, () => this.inner.unlink(path));
  }
  mkdir(path: string): Promise<void> {
    return this.run('mkdir', path, () => this.inner.mkdir(path));
  }
  readdir(path: string): Promise<string[]> {
    return this.run('readdir', path, () => this.inner.readdir(path));
  }
  readdirTypes(path: string): Promise<fs.Dirent[]> {
    return this.run('readdir', path, () => this.inner.readdirTypes(path));
  }
  stat(path: string): Promise<fs.Stats> {
    return this.run('stat', path, () => this.inner.stat(path));
  }
  readFile(path: string): Promise<Buffer> {
    return this.run('readFile', path, () => this.inner.readFile(path));
  }
  writeFile(path: string, data: Buffer | string): Promise<void> {
    return this.run('writeFile', path, () => this.inner.writeFile(path, data));
  }
  truncate(path: string, length: number): Promise<void> {
    return this.run('truncate', path, () => this.inner.truncate(path, length));
  }
  openSync(path: string, flags: string): number {
    return this.runSync('open', path, () => {
      const fd = this.inner.openSync(path, flags);
      this.paths.set(fd, path);
      return fd;
    });
  }
  writevSync(fd: number, buffers: Buffer[], position?: number): number {
    return this.runSync('writev', fd, () => this.inner.writevSync(fd, buffers, position));
  }
  ftruncateSync(fd: number, length: number): void {
    this.runSync('ftruncate', fd, () => this.inner.ftruncateSync(fd, length));
  }
  fdatasyncSync(fd: number): void {
    this.runSync('fdatasync', fd, () => this.inner.fdatasyncSync(fd));
  }
  closeSync(fd: number): void {
    this.runSync('close', fd, () => {
      this.paths.delete(fd);
      this.inner.closeSync(fd);
    });
  }
  renameSync(from: string, to: string): void {
    this.runSync('rename', from, () => this.inner.renameSync(from, to));
  }
  unlinkSync(path: string): void {
    this.runSync('unlink', path, () => this.inner.unlinkSync(path));
  }
}

/**
 * Writes a whole file so that it is either all there or absent: a temp file
 * beside it (`tmp`), written, fdatasynced and closed, then renamed over
 * `path`, all through `fsys`. On failure the temp file is removed and the
 * write's own error is rejected with; `path` is then untouched.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
  tmp = `${path}.tmp`,
  fsys: Filesystem = realFilesystem,
): Promise<void> {
  const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : (data instanceof Uint8Array ? [data] : data).map(asBuffer);
  const fd = await fsys.open(tmp, 'w');
  try {
    await writevAll(fsys, fd, parts);
    await fsys.fdatasync(fd);
  } catch (err) {
    await fsys.close(fd).catch(() => {}); // the write's error is the one reported
    await fsys.unlink(tmp).catch(() => {});
    throw err;
  }
  try {
    await fsys.close(fd);
    await fsys.rename(tmp, path);
  } catch (err) {
    await fsys.unlink(tmp).catch(() => {}); // the close's or rename's error is the one reported
    throw err;
  }
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
