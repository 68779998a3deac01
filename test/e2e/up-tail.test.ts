/**
 * `tributary up --tail GLOB` as a separate process: lines written to a file,
 * appended, rotated, and appended again across a SIGTERM and restart all
 * land in <data-dir>/out once, under the tag `tail.<path>`.
 */
import { appendFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exited, freePort, readOutput, startUp, tempDir, waitFor } from '@tributary/test-kit';

async function up(dataDir: string, glob: string, ports: number[]) {
  const [forward, http, metrics] = ports.map(String);
  const child = await startUp([
    '--data-dir',
    dataDir,
    '--forward-port',
    forward,
    '--http-port',
    http,
    '--metrics-port',
    metrics,
    '--tail',
    glob,
  ]);
  expect(child.output()).toContain(`tailing:    ${glob}`);
  return child;
}

function lines(from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += `line ${i}\n`;
  return s;
}

test('up --tail: a file written, rotated and appended across a restart lands in the output once per line', async () => {
  const dir = tempDir('up-tail');
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const file = join(logs, 'app.log');
  writeFileSync(file, lines(0, 5000));
  const ports = [await freePort(), await freePort(), await freePort()];
  const out = join(dir, 'data', 'out');
  const messages = () => readOutput(out).lines.map((l) => l.message as string);
  let child = await up(join(dir, 'data'), `${logs}/*.log*`, ports);
  try {
    await waitFor(() => messages().length >= 5000, 60_000, 'the file read from its head');
    appendFileSync(file, lines(5000, 6000));
    renameSync(file, `${file}.1`);
    writeFileSync(file, lines(6000, 7000));
    await waitFor(() => messages().length >= 7000, 60_000, 'the appended and rotated lines');
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    appendFileSync(file, lines(7000, 8000)); // written while stopped
    child = await up(join(dir, 'data'), `${logs}/*.log*`, ports);
    await waitFor(() => messages().length >= 8000, 60_000, 'lines written while stopped');
    await new Promise((r) => setTimeout(r, 1500)); // anything read twice would land now
    const got = messages();
    expect(got.length).toBe(8000);
    expect(new Set(got).size).toBe(8000);
    const tags = new Set(readOutput(out).lines.map((l) => l._tag));
    expect(tags).toEqual(new Set([`tail.${file.replace(/^\//, '').replace(/\//g, '.')}`]));
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}, 240_000);
