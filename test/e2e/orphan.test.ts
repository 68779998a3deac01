/**
 * SIGTERM to the README's launch command, `npx -y pnpm@9.15.9 exec tributary
 * up`, started as a shell starts a job (its own process group, npx leading
 * it). npx does not pass the signal on: it dies while pnpm and tributary below
 * it live on. `tributary up` notices that the leader of its group is gone,
 * drains as on SIGTERM and exits; nothing of it is left behind and its ports
 * are free again. Runs the real npx (pnpm comes from npm's cache or the
 * registry, so the first run may take a while).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, tempDir, waitFor } from '@tributary/test-kit';

const ROOT = join(__dirname, '..', '..');

/** Pids of live processes whose command line mentions `marker`. */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const state = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.includes(marker) && state !== 'Z') pids.push(Number(name));
    } catch {
      // the process ended while being read
    }
  }
  return pids;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('SIGTERM to `npx -y pnpm@9.15.9 exec tributary up` leaves no Tributary process behind', async () => {
  const dir = tempDir('orphan');
  const [forward, metrics] = [await freePort(), await freePort()];
  let npx: ChildProcess | null = null;
  let out = '';
  try {
    npx = spawn(
      'npx',
      ['-y', 'pnpm@9.15.9', 'exec', 'tributary', 'up', '--data-dir', dir, '--forward-port', String(forward)].concat([
        '--http-port',
        '0',
        '--metrics-port',
        String(metrics),
      ]),
      { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    npx.stdout?.on('data', (d) => {
      out += d;
    });
    npx.stderr?.on('data', (d) => {
      out += d;
    });
    await waitFor(() => out.includes('Tributary is up') || npx?.exitCode !== null, 120_000, `tributary up through npx:\n${out}`);
    expect(out).toContain('Tributary is up');
    expect(await portOpen(forward)).toBe(true);
    const before = processesWith(dir);
    expect(before.length).toBeGreaterThanOrEqual(2); // the wrapper chain and tributary itself

    npx.kill('SIGTERM');
    await waitFor(() => processesWith(dir).length === 0, 20_000, `every process of the launch to exit (left: ${processesWith(dir)})`);
    expect(await portOpen(forward)).toBe(false);
    expect(out).toContain('Stopped cleanly.');
  } finally {
    for (const pid of processesWith(dir)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
