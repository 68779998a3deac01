import fs, {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, RetryableError, createLogger, partConfigSpec, silentLogger, validateConfig } from '@tributary/core';
import { type ForwardChunk, decodeEntries } from '@tributary/forward-protocol';
import { Registry } from 'prom-client';
import type { Input } from '../input';
import { type TailInputConfig, tailInputSchema } from './config';
import { JsonTranscoder } from './json-msgpack';
import { createTailInput } from './tail-input';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tail-'));
  dirs.push(d);
  return d;
}

/** A tail input over `dir` whose consume keeps every record, remembering acked chunk ids as the forwarder's buffer does. */
class Harness {
  readonly records: Array<{ tag: string; record: Record<string, unknown>; time: number }> = [];
  readonly acked = new Set<string>();
  readonly registry = new Registry();
  input: Input | null = null;
  refuse = false;

  constructor(
    readonly dir: string,
    readonly raw: Record<string, unknown>,
    readonly logger: Logger = silentLogger,
  ) {}

  config(): TailInputConfig {
    const spec = partConfigSpec<{ tail: TailInputConfig }>('tail', tailInputSchema);
    return validateConfig(spec, {
      tail: {
        positions_path: join(this.dir, 'positions.journal'),
        refresh_interval_ms: 50,
        poll_interval_ms: 10,
        rotate_wait_ms: 200,
        ...this.raw,
      },
    }).tail;
  }

  async start(): Promise<void> {
    this.input = createTailInput(this.config(), {
      logger: this.logger,
      onRefused: () => undefined,
      registry: this.registry,
      chunkLimitBytes: 1024 * 1024,
      skipAcked: async (chunks) => chunks.filter((c) => !this.acked.has(key(c))),
    });
    await this.input.start(async (chunks) => {
      if (this.refuse) throw new RetryableError('TRB_BUF_FULL', 'The buffer is full.');
      for (const c of chunks) {
        if (c.chunkId) this.acked.add(key(c));
        for (const e of decodeEntries(c.entries)) this.records.push({ tag: c.tag, record: e.record, time: e.time.seconds });
      }
    });
  }

  async stop(): Promise<void> {
    await this.input?.stop(1000);
    this.input = null;
  }

  messages(): string[] {
    return this.records.map((r) => String(r.record.message));
  }

  async waitFor(n: number, ms = 5000): Promise<void> {
    const until = Date.now() + ms;
    while (this.records.length < n && Date.now() < until) await sleep(10);
    if (this.records.length < n) throw new Error(`${this.records.length} records after ${ms} ms, expected ${n}`);
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = await this.registry.getSingleMetric(name)?.get();
    return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0);
  }
}

function key(c: ForwardChunk): string {
  return `${c.chunkId}\n${c.tag}\n${c.count}\n${c.entries.length}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function lines(from: number, to: number, prefix = 'line'): string {
  let s = '';
  for (let i = from; i < to; i++) s += `${prefix} ${i}\n`;
  return s;
}

function range(from: number, to: number, prefix = 'line'): string[] {
  return Array.from({ length: to - from }, (_, i) => `${prefix} ${from + i}`);
}

test('reads globbed files from the head, follows appends, tags from the path and adds path_key', async () => {
  const dir = tmp();
  mkdirSync(join(dir, 'logs'));
  const a = join(dir, 'logs', 'a.log');
  writeFileSync(a, lines(0, 3));
  writeFileSync(join(dir, 'logs', 'skip.log'), 'never\n');
  const h = new Harness(dir, {
    path: [join(dir, 'logs', '*.log')],
    exclude_path: [join(dir, '**', 'skip.log')],
    read_from_head: true,
    tag: 'app.*',
    path_key: 'file',
  });
  await h.start();
  try {
    await h.waitFor(3);
    appendFileSync(a, 'line 3\nline 4\npartial');
    await h.waitFor(5);
    await sleep(100);
    expect(h.messages()).toEqual(range(0, 5)); // the line without its newline waits for it
    appendFileSync(a, ' end\n');
    await h.waitFor(6);
  } finally {
    await h.stop();
  }
  expect(h.messages()).toEqual([...range(0, 5), 'partial end']);
  const tag = `app.${a.replace(/^\//, '').replace(/\//g, '.')}`;
  expect(new Set(h.records.map((r) => r.tag))).toEqual(new Set([tag]));
  expect(h.records[0].record.file).toBe(a);
  expect(await h.metric('tributary_tail_lines_total')).toBe(6);
});

test('without read_from_head, files found at the first start are read from their end; files appearing later from their head', async () => {
  const dir = tmp();
  const a = join(dir, 'a.log');
  writeFileSync(a, lines(0, 3, 'old'));
  const h = new Harness(dir, { path: [join(dir, '*.log')] });
  await h.start();
  try {
    await sleep(150);
    appendFileSync(a, 'new 0\n');
    writeFileSync(join(dir, 'b.log'), 'b 0\nb 1\n');
    await h.waitFor(3);
  } finally {
    await h.stop();
  }
  expect(h.messages().sort()).toEqual(['b 0', 'b 1', 'new 0']);
});

test('a restart resumes from the saved positions: nothing read twice, nothing skipped', async () => {
  const dir = tmp();
  const a = join(dir, 'a.log');
  writeFileSync(a, lines(0, 100));
  const raw = { path: [join(dir, '*.log')], read_from_head: true };
  const h1 = new Harness(dir, raw);
  await h1.start();
  await h1.waitFor(100);
  await h1.stop();
  appendFileSync(a, lines(100, 150));
  const h2 = new Harness(dir, raw);
  await h2.start();
  try {
    await h2.waitFor(50);
    await sleep(100);
  } finally {
    await h2.stop();
  }
  expect([...h1.messages(), ...h2.messages()]).toEqual(range(0, 150));
});

test('a batch the next stage refuses is offered again, and nothing is lost or doubled', async () => {
  const dir = tmp();
  const a = join(dir, 'a.log');
  writeFileSync(a, lines(0, 10));
  const h = new Harness(dir, { path: [a], read_from_head: true });
  h.refuse = true;
  await h.start();
  try {
    await sleep(200);
    expect(h.records.length).toBe(0);
    h.refuse = false;
    await h.waitFor(10);
    await sleep(50);
  } finally {
    await h.stop();
  }
  expect(h.messages()).toEqual(range(0, 10));
  expect(await h.metric('tributary_tail_errors_total', { code: 'TRB_BUF_FULL' })).toBeGreaterThan(0);
});

test('rename rotation with writes racing it: the old file is finished, the new one read from its head, every line once', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, '');
  const h = new Harness(dir, { path: [a], rotate_wait_ms: 300 });
  await h.start();
  try {
    await sleep(100);
    let n = 0;
    for (let rotation = 0; rotation < 5; rotation++) {
      for (let k = 0; k < 200; k++) appendFileSync(a, `line ${n++}\n`);
      renameSync(a, `${a}.${rotation}`);
      appendFileSync(`${a}.${rotation}`, `line ${n++}\n`); // a writer still holding the old file
      writeFileSync(a, `line ${n++}\n`);
      // A file is found by a scan (refresh_interval_ms): one created and rotated away between two is never seen, so the
      // next rotation waits until this file's line was read (a fixed sleep was too short on a loaded machine).
      const last = `line ${n - 1}`;
      for (let i = 0; i < 500 && !h.messages().includes(last); i++) await sleep(10);
      if (!h.messages().includes(last)) throw new Error(`${last} (a new file's line) was not read within 5 s`);
    }
    await h.waitFor(n, 10_000);
    await sleep(500); // past rotate_wait_ms: the old files are closed
    expect(await h.metric('tributary_tail_files_watched')).toBe(1);
    expect(await h.metric('tributary_tail_rotations_total', { kind: 'rename' })).toBe(5);
    expect(h.messages().sort()).toEqual(range(0, n).sort());
  } finally {
    await h.stop();
  }
});

test('a glob that matches the rotated files too (app.log*) reads each once, whatever its name becomes', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, lines(0, 10));
  const h = new Harness(dir, { path: [`${a}*`], read_from_head: true });
  await h.start();
  try {
    await h.waitFor(10);
    renameSync(a, `${a}.1`);
    writeFileSync(a, lines(10, 20));
    await h.waitFor(20);
    renameSync(`${a}.1`, `${a}.2`);
    renameSync(a, `${a}.1`);
    writeFileSync(a, lines(20, 30));
    await h.waitFor(30);
    await sleep(300); // several scans see the renamed files
  } finally {
    await h.stop();
  }
  expect(h.messages().sort()).toEqual(range(0, 30).sort());
});

test('copytruncate: a file shrinking below its position is read again from its start', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, lines(0, 50));
  const h = new Harness(dir, { path: [a], read_from_head: true });
  await h.start();
  try {
    await h.waitFor(50);
    truncateSync(a, 0);
    appendFileSync(a, lines(50, 55));
    await h.waitFor(55);
    await sleep(100);
  } finally {
    await h.stop();
  }
  expect(h.messages()).toEqual(range(0, 55));
  expect(await h.metric('tributary_tail_rotations_total', { kind: 'truncate' })).toBe(1);
});

test('a deleted file is finished and closed, its position forgotten; a new file on the same inode is read whole', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, lines(0, 5, 'first'));
  const h = new Harness(dir, { path: [join(dir, '*.log')], read_from_head: true, rotate_wait_ms: 60_000 });
  await h.start();
  try {
    await h.waitFor(5);
    unlinkSync(a);
    const until = Date.now() + 3000;
    while ((await h.metric('tributary_tail_files_watched')) > 0 && Date.now() < until) await sleep(10);
    expect(await h.metric('tributary_tail_files_watched')).toBe(0); // closed without waiting rotate_wait_ms
    writeFileSync(a, lines(0, 3, 'second')); // ext4/tmpfs commonly hand the freed inode out again
    await h.waitFor(8);
    await sleep(100);
  } finally {
    await h.stop();
  }
  expect(h.messages()).toEqual([...range(0, 5, 'first'), ...range(0, 3, 'second')]);
});

test('inode reuse while stopped: a saved position is not applied to another file that got the same inode', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, lines(0, 20, 'old'));
  const raw = { path: [a], read_from_head: true };
  const h1 = new Harness(dir, raw);
  await h1.start();
  await h1.waitFor(20);
  await h1.stop();
  // the same path and, on most filesystems, the same inode: different first bytes
  unlinkSync(a);
  writeFileSync(a, lines(0, 30, 'new'));
  const h2 = new Harness(dir, raw);
  await h2.start();
  try {
    await h2.waitFor(30);
    await sleep(100);
  } finally {
    await h2.stop();
  }
  expect(h2.messages()).toEqual(range(0, 30, 'new'));
});

test('a file rotated while stopped is finished from its saved position, the new one read from its head', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, lines(0, 10));
  const raw = { path: [a], read_from_head: false };
  const h1 = new Harness(dir, raw);
  await h1.start();
  await sleep(150);
  appendFileSync(a, lines(10, 20));
  await h1.waitFor(10);
  await h1.stop();
  appendFileSync(a, lines(20, 30));
  renameSync(a, `${a}.1`);
  writeFileSync(a, lines(30, 40));
  const h2 = new Harness(dir, raw);
  await h2.start();
  try {
    await h2.waitFor(20);
    await sleep(100);
  } finally {
    await h2.stop();
  }
  expect(h1.messages()).toEqual(range(10, 20));
  expect(h2.messages().sort()).toEqual(range(20, 40).sort());
});

test('a glob gains files while running: each new file is read from its head', async () => {
  const dir = tmp();
  const h = new Harness(dir, { path: [join(dir, '**', '*.log')] });
  await h.start();
  try {
    await sleep(150); // past the first scan: what it finds is read from its end
    for (let i = 0; i < 20; i++) {
      mkdirSync(join(dir, `d${i % 4}`), { recursive: true });
      writeFileSync(join(dir, `d${i % 4}`, `f${i}.log`), `file ${i}\n`);
    }
    await h.waitFor(20);
    await sleep(100);
  } finally {
    await h.stop();
  }
  expect(h.messages().sort()).toEqual(range(0, 20, 'file').sort());
  expect(await h.metric('tributary_tail_files_watched')).toBe(20);
});

test('a crash after the buffer accepted a batch and before its position was committed: the batch is recognised, not repeated', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, lines(0, 10));
  const raw = { path: [a], read_from_head: true };
  const h1 = new Harness(dir, raw);
  await h1.start();
  await h1.waitFor(10);
  await h1.stop();
  // the journal as a kill -9 between consume resolving and the commit record leaves it: the last record an intent
  const journal = join(dir, 'positions.journal');
  const records = readFileSync(journal, 'utf8').trim().split('\n');
  const intent = records.map((l) => JSON.parse(l)).find((r) => r.end > r.pos);
  writeFileSync(journal, `${records.slice(0, records.indexOf(JSON.stringify(intent)) + 1).join('\n')}\n`);
  appendFileSync(a, lines(10, 15));
  const h2 = new Harness(dir, raw);
  for (const k of h1.acked) h2.acked.add(k); // the buffer's acked-id journal survived with the events
  await h2.start();
  try {
    await h2.waitFor(5);
    await sleep(150);
  } finally {
    await h2.stop();
  }
  expect(h2.messages()).toEqual(range(10, 15));

  // and when the buffer did not get it (no acked id), the range is read again
  writeFileSync(journal, `${records.slice(0, records.indexOf(JSON.stringify(intent)) + 1).join('\n')}\n`);
  const h3 = new Harness(dir, raw);
  await h3.start();
  try {
    await h3.waitFor(15);
    await sleep(150);
  } finally {
    await h3.stop();
  }
  expect(h3.messages()).toEqual(range(0, 15));
});

test('a java stack trace split across writes is one record; the last record ends after multiline.flush_ms', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, '');
  const h = new Harness(dir, { path: [a], multiline: { mode: 'java', flush_ms: 300 } });
  await h.start();
  try {
    await sleep(100);
    appendFileSync(a, '12:00:00 ERROR failed\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n');
    await sleep(150); // shorter than flush_ms: the record stays open
    appendFileSync(a, '\tat a.B.d(B.java:2)\n\t... 3 more\n12:00:01 INFO ok\n');
    await h.waitFor(1);
    expect(h.messages()).toEqual([
      '12:00:00 ERROR failed\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\n\t... 3 more',
    ]);
    await h.waitFor(2); // after flush_ms
  } finally {
    await h.stop();
  }
  expect(h.messages()[1]).toBe('12:00:01 INFO ok');
});

test('an open multiline record is not committed: a restart reads it again whole', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, '[1] one\n more\n[2] two\n still two\n');
  const raw = { path: [a], read_from_head: true, multiline: { mode: 'regex', first_line: '^\\[\\d\\]', flush_ms: 60_000 } };
  const h1 = new Harness(dir, raw);
  await h1.start();
  await h1.waitFor(1);
  await sleep(100);
  await h1.stop();
  appendFileSync(a, ' and more\n[3] three\n');
  const h2 = new Harness(dir, raw);
  await h2.start();
  try {
    await h2.waitFor(1);
    await sleep(100);
  } finally {
    await h2.stop();
  }
  expect(h1.messages()).toEqual(['[1] one\n more']);
  expect(h2.messages()).toEqual(['[2] two\n still two\n and more']);
});

test('parsers on real-looking files: nginx access log, syslog; a line that does not parse is kept and counted', async () => {
  const dir = tmp();
  const nginx = join(dir, 'access.log');
  writeFileSync(
    nginx,
    [
      '10.0.0.1 - - [07/Dec/2026:03:00:00 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe/1.29"',
      'garbage line',
      '10.0.0.2 - bob [07/Dec/2026:03:00:01 +0000] "POST /api HTTP/2.0" 201 512 "https://a.example/" "curl/8.5.0"',
      '',
    ].join('\n'),
  );
  const h = new Harness(dir, { path: [nginx], read_from_head: true, parser: { type: 'nginx' } });
  await h.start();
  try {
    await h.waitFor(3);
  } finally {
    await h.stop();
  }
  expect(h.records.map((r) => r.record)).toEqual([
    expect.objectContaining({ remote: '10.0.0.1', path: '/health', code: 200, agent: 'kube-probe/1.29' }),
    { message: 'garbage line' },
    expect.objectContaining({ remote: '10.0.0.2', user: 'bob', method: 'POST', code: 201, size: 512 }),
  ]);
  expect(h.records[0].time).toBe(Date.UTC(2026, 11, 7, 3) / 1000);
  expect(await h.metric('tributary_tail_parse_errors_total')).toBe(1);

  const syslog = join(dir, 'syslog');
  writeFileSync(syslog, 'Dec  7 03:00:00 ip-10-0-0-1 sshd[812]: Accepted publickey for ec2-user\n');
  const s = new Harness(dir, { path: [syslog], read_from_head: true, parser: { type: 'syslog_rfc3164' }, positions_path: join(dir, 'p2') });
  await s.start();
  try {
    await s.waitFor(1);
  } finally {
    await s.stop();
  }
  expect(s.records[0].record).toEqual({ host: 'ip-10-0-0-1', ident: 'sshd', pid: '812', message: 'Accepted publickey for ec2-user' });
});

test('lines over max_line_bytes are cut or skipped, counted, and the lines after them read', async () => {
  for (const action of ['cut', 'skip'] as const) {
    const dir = tmp();
    const a = join(dir, 'app.log');
    const long = 'x'.repeat(5000);
    // one over-long line whole in a read, and one longer than a read (its end comes in a later write)
    writeFileSync(a, `before\n${long}\n${'y'.repeat(300_000)}`);
    const h = new Harness(dir, { path: [a], read_from_head: true, max_line_bytes: 1000, long_lines: action });
    await h.start();
    try {
      await sleep(200);
      appendFileSync(a, `${'y'.repeat(1000)}\nafter\n`);
      await h.waitFor(action === 'cut' ? 4 : 2);
      await sleep(100);
    } finally {
      await h.stop();
    }
    expect(h.messages()).toEqual(action === 'cut' ? ['before', 'x'.repeat(1000), 'y'.repeat(1000), 'after'] : ['before', 'after']);
    expect(await h.metric('tributary_tail_long_lines_total', { action })).toBe(2);
  }
});

test('copytruncate with the same bytes written again: the new lines are not taken for the old ones by chunk id', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, lines(0, 10));
  const h = new Harness(dir, { path: [a], read_from_head: true });
  await h.start();
  try {
    await h.waitFor(10);
    truncateSync(a, 0);
    await sleep(100); // seen truncated before it grows back past the old position
    appendFileSync(a, lines(0, 10));
    await h.waitFor(20);
  } finally {
    await h.stop();
  }
  expect(h.messages()).toEqual([...range(0, 10), ...range(0, 10)]);
});

test('lifecycle: stop without start, stop twice; a batch still pending at stop is not committed and is read again', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  writeFileSync(a, lines(0, 5));
  const config = new Harness(dir, { path: [a], read_from_head: true }).config();
  const idle = createTailInput(config, { logger: silentLogger, onRefused: () => undefined });
  await idle.stop(0);
  expect(() => idle.address).toThrow('listens on no address');

  const stuck = createTailInput(config, { logger: silentLogger, onRefused: () => undefined });
  let offered = 0;
  await stuck.start((chunks) => {
    offered += chunks.length;
    return new Promise(() => undefined); // the buffer never answers
  });
  const until = Date.now() + 3000;
  while (offered === 0 && Date.now() < until) await sleep(10);
  expect(offered).toBe(1);
  const t0 = Date.now();
  await stuck.stop(100);
  await stuck.stop(100);
  expect(Date.now() - t0).toBeLessThan(1000);

  const h = new Harness(dir, { path: [a], read_from_head: true });
  await h.start();
  try {
    await h.waitFor(5);
  } finally {
    await h.stop();
  }
  expect(h.messages()).toEqual(range(0, 5));
});

test('a stat that fails for another reason than a missing path (EIO, EACCES) is logged and counted; a followed file is not taken for rotated', async () => {
  const dir = tmp();
  const a = join(dir, 'a.log');
  const b = join(dir, 'b.log');
  writeFileSync(a, lines(0, 2));
  const logged: Array<{ code?: string; msg: string }> = [];
  const logger = createLogger('t', 'info', { write: (line: string) => void logged.push(JSON.parse(line)) });
  const h = new Harness(dir, { path: [join(dir, '*.log')], read_from_head: true }, logger);
  const realStat = fs.stat;
  const failing = new Map<string, string>();
  const spy = jest.spyOn(fs, 'stat').mockImplementation(((path: fs.PathLike, ...rest: unknown[]) => {
    const code = failing.get(String(path));
    const cb = rest[rest.length - 1] as (err: NodeJS.ErrnoException | null, st?: fs.Stats) => void;
    if (code) return void process.nextTick(() => cb(Object.assign(new Error(`${code}: stat ${path}`), { code })));
    return (realStat as (...args: unknown[]) => void)(path, ...rest);
  }) as typeof fs.stat);
  await h.start();
  try {
    await h.waitFor(2);
    // A new file cannot be stat-ed (EACCES): said once (the log limiter holds the repeats), counted at every scan.
    writeFileSync(b, lines(0, 1, 'b'));
    failing.set(b, 'EACCES');
    await sleep(300);
    expect(logged.filter((l) => l.code === 'TRB_TAIL_READ').map((l) => l.msg)).toEqual([
      `The file ${b} could not be read (EACCES: stat ${b}); it is tried again at the next poll.`,
    ]);
    const afterB = await h.metric('tributary_tail_errors_total', { code: 'TRB_TAIL_READ' });
    expect(afterB).toBeGreaterThanOrEqual(2);
    // The followed file's path cannot be stat-ed for a while (a flaky mount): counted, and a is not taken for rotated.
    failing.delete(b);
    await h.waitFor(3); // b, once its stat works
    failing.set(a, 'EIO');
    await sleep(1300); // past the rotation check (once a second)
    expect(await h.metric('tributary_tail_errors_total', { code: 'TRB_TAIL_READ' })).toBeGreaterThan(afterB);
    appendFileSync(a, lines(2, 4)); // still followed from its descriptor: its appends are read
    await h.waitFor(5);
    expect(await h.metric('tributary_tail_rotations_total')).toBe(0);
    failing.clear();
  } finally {
    spy.mockRestore();
    await h.stop();
  }
  expect(h.messages().sort()).toEqual([...range(0, 4), 'b 0'].sort());
});

test('the json parser: objects become records as JSON.parse reads them, path_key replaces a key of that name, other lines are kept as {message}', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  const lines = [
    '{"level":"info","msg":"ünïcødé ✓ 😀 \\"q\\"","n":42,"f":1.5,"nested":{"a":[1,null,true]}}',
    '{"file":"app says","level":"warn"}', // path_key is "file": the general path replaces its value
    '{"b":1,"2":"index keys first"}',
    'not json at all',
    '[1,2,3]',
    '{"cut": ',
  ];
  const notUtf8 = Buffer.from([...Buffer.from('{"bytes":"'), 0xff, 0xc3, ...Buffer.from('"}')]);
  writeFileSync(a, Buffer.concat([Buffer.from(`${lines.join('\n')}\n`), notUtf8, Buffer.from('\n')]));
  const h = new Harness(dir, { path: [a], read_from_head: true, parser: { type: 'json' }, path_key: 'file' });
  const transcode = jest.spyOn(JsonTranscoder.prototype, 'transcode');
  let straight: boolean[];
  await h.start();
  try {
    await h.waitFor(lines.length + 1);
  } finally {
    await h.stop();
    straight = transcode.mock.results.map((r) => (r.value as number) >= 0);
    transcode.mockRestore();
  }
  // the first line went straight to MessagePack; the others were left to JSON.parse
  expect(straight).toEqual([true, false, false, false, false, false, false]);
  expect(h.records.map((r) => r.record)).toEqual([
    { ...JSON.parse(lines[0]), file: a },
    { file: a, level: 'warn' },
    { 2: 'index keys first', b: 1, file: a },
    { message: 'not json at all', file: a },
    { message: '[1,2,3]', file: a },
    { message: '{"cut": ', file: a },
    { bytes: '\ufffd\ufffd', file: a }, // bytes that are not UTF-8: JSON.parse of the decoded text, as before
  ]);
  expect(Object.keys(h.records[1].record)).toEqual(['file', 'level']); // in its place, as JSON.parse and the assignment leave it
  expect(await h.metric('tributary_tail_parse_errors_total')).toBe(3);
});

test('a record the encoder refuses (keys constructor and toJSON that are no functions) is kept as {message}, and the lines after it are read', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  // time_key takes the general path (JSON.parse, then the encoder), where such a record made the encoder throw
  const lines = ['{"ts":1700000000,"constructor":1,"toJSON":2}', '{"ts":1700000001,"msg":"next"}'];
  writeFileSync(a, `${lines.join('\n')}\n`);
  const h = new Harness(dir, { path: [a], read_from_head: true, parser: { type: 'json', time_key: 'ts', time_format: 'unix' } });
  await h.start();
  try {
    await h.waitFor(2);
  } finally {
    await h.stop();
  }
  expect(h.records.map((r) => r.record)).toEqual([{ message: lines[0] }, { msg: 'next' }]);
  expect(h.records[1].time).toBe(1700000001);
  expect(await h.metric('tributary_tail_parse_errors_total')).toBe(1);
});

test('a record nested past the encoder stack is kept as {message}, and the lines after it are read', async () => {
  const dir = tmp();
  const a = join(dir, 'app.log');
  // JSON.parse takes any depth; the encoder recurses, and a line this deep overflows its stack
  const deep = `{"ts":1700000000,"a":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
  writeFileSync(a, `${deep}\n{"ts":1700000001,"msg":"next"}\n`);
  const h = new Harness(dir, { path: [a], read_from_head: true, parser: { type: 'json', time_key: 'ts', time_format: 'unix' } });
  await h.start();
  try {
    await h.waitFor(2);
  } finally {
    await h.stop();
  }
  expect(h.records.map((r) => r.record)).toEqual([{ message: deep }, { msg: 'next' }]);
  expect(await h.metric('tributary_tail_parse_errors_total')).toBe(1);
});
