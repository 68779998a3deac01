import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, RetryableError, partConfigSpec, silentLogger, validateConfig } from '@tributary/core';
import { type ForwardChunk, decodeEntries } from '@tributary/forward-protocol';
import { Registry } from 'prom-client';
import type { Input } from '../input';
import { type TailInputConfig, tailInputSchema } from './config';
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
