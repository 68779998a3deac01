/**
 * A bench whose acking receiver dies after it listened fails at once, saying
 * so, and leaves no process behind: it does not wait out its drain limit for
 * events that can no longer arrive, nor report an incomplete run as a result.
 */
import { readFileSync, rmSync } from 'node:fs';
import { exited, tempDir } from '@tributary/test-kit';
import { processesWith, startBenchCli, survivors } from './bench-cli';

/** The command line of a live process, its arguments joined by spaces ('' once it is gone). */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ');
  } catch {
    return '';
  }
}

test('a receiver killed mid-bench fails the bench with a message naming it', async () => {
  const dir = tempDir('bench-receiver');
  const marker = `TMPDIR=${dir}`;
  // it leads its own group (startBenchCli), so the finally below can clean up if this fails
  const bench = startBenchCli(['forwarder-packed', '--seconds', '4'], { ...process.env, TMPDIR: dir, FLUENT_BIT: '' });
  try {
    // the bench, its receiver and its forwarder running (the forwarder starts once the receiver listens; at most 30 s)
    for (let i = 0; i < 300 && processesWith(marker).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    const receiver = processesWith(marker).filter((pid) => commandLine(pid).includes('receiver.js'));
    expect(receiver).toHaveLength(1);
    // most often while the sender sends (the forwarder is healthy within a second); earlier, the bench says the same
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(receiver[0], 'SIGKILL');
    expect(await exited(bench)).toBe(1);
    expect(bench.output()).toMatch(/The bench receiver exited \(SIGKILL\) mid-bench, after it had acked [\d,]+ events/);
    expect(await survivors(dir)).toEqual([]);
  } finally {
    try {
      process.kill(-(bench.pid as number), 'SIGKILL');
    } catch {
      // the group is gone: nothing to clean up
    }
    rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);
