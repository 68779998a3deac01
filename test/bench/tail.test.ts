/**
 * CI smoke run of `tributary bench tail` on 2,000 lines per case: each case
 * (1 and 100 files, the `none` and `json` parsers) must deliver every line
 * written to the receiver, through Tributary and, when ../shared/fluent-bit
 * is there, through Fluent Bit, and leave no process behind. Counts are
 * asserted, never rates (the machine may be slow or shared).
 */
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { tempDir } from '@tributary/test-kit';
import { runBenchCli, survivors } from './bench-cli';

const FLUENT_BIT = resolve(__dirname, '..', '..', '..', 'shared', 'fluent-bit', 'bin', 'fluent-bit');
const LINES = 2000;
/**
 * Longest the bench may take before the test calls it stuck: about 8 s when
 * it works; a run that stalls ends at the bench's own limit (30 s plus 1 s per
 * 10,000 lines, after at most 15 s for the forwarder to become healthy), and
 * this leaves room for one such run among the eight.
 */
const LIMIT_MS = 120_000;

test(
  'the tail bench delivers every line it wrote through each agent and leaves no process behind',
  async () => {
    const dir = tempDir('bench-tail');
    const withFluentBit = existsSync(FLUENT_BIT);
    const env = { ...process.env, TMPDIR: dir, FLUENT_BIT: withFluentBit ? FLUENT_BIT : '' }; // empty: Tributary alone
    const { code, out } = await runBenchCli(['tail', '--lines', String(LINES)], env, LIMIT_MS);
    console.log(out);
    const left = await survivors(dir);
    rmSync(dir, { recursive: true, force: true });

    expect(code).toBe(0);
    expect(left).toEqual([]);
    const delivered = (who: string) =>
      [...out.matchAll(new RegExp(`^ {2}${who} .*\\(delivered ([\\d,]+) of ([\\d,]+) lines`, 'gm'))].map((m) => [
        Number(m[1].replace(/,/g, '')),
        Number(m[2].replace(/,/g, '')),
      ]);
    expect(delivered('Tributary')).toEqual(Array(4).fill([LINES, LINES]));
    if (withFluentBit) expect(delivered('Fluent Bit')).toEqual(Array(4).fill([LINES, LINES]));
    else expect(out.match(/Fluent Bit not run: FLUENT_BIT is not set/g)).toHaveLength(4);
  },
  LIMIT_MS + 10_000,
);
