/**
 * `tributary bench <suite>` refuses an option the suite does not take: it
 * names the option, the suite and the options the suite takes, exits 1, and
 * starts nothing (it prints nothing else, and no process of it is left).
 * Each run below would be a short bench if the option were ignored.
 */
import { rmSync } from 'node:fs';
import { tempDir } from '@tributary/test-kit';
import { runBenchCli, survivors } from './bench-cli';

/** A refusal takes a node start-up; a bench that ran instead is cut here. */
const LIMIT_MS = 30_000;

const REFUSED: Array<[string[], string]> = [
  [['protocol', '--seconds', '1', '--works', 'packed'], 'bench protocol does not take --works (it takes --seconds).'],
  [
    ['forwarder-packed', '--seconds', '1', '--lines', '100'],
    'bench forwarder-packed does not take --lines (it takes --seconds, --connections, --filters).',
  ],
  [
    ['forwarder-message', '--seconds', '1', '--sink', 's3'],
    'bench forwarder-message does not take --sink (it takes --seconds, --connections, --filters).',
  ],
  [
    ['forwarder-message-ack', '--seconds', '1', '--encoder-threads', '2'],
    'bench forwarder-message-ack does not take --encoder-threads (it takes --seconds, --connections, --filters).',
  ],
  [
    ['aggregator', '--seconds', '1', '--filters', 'grep'],
    'bench aggregator does not take --filters (it takes --seconds, --connections, --sink, --log, --compress, --encoder-threads).',
  ],
  [['tail', '--lines', '100', '--seconds', '1'], 'bench tail does not take --seconds (it takes --lines).'],
  [
    ['side-by-side', '--seconds', '1', '--works', 'packed', '--lines', '100', '--connections', '4'],
    'bench side-by-side does not take --connections, --lines (it takes --seconds, --works, --encoder-threads).',
  ],
];

test.each(REFUSED)(
  'bench %j is refused before it starts anything',
  async (args, message) => {
    const dir = tempDir('bench-options');
    try {
      const { code, out } = await runBenchCli(args, { ...process.env, TMPDIR: dir, FLUENT_BIT: '' }, LIMIT_MS);
      expect(await survivors(dir)).toEqual([]);
      expect(out.trim()).toBe(message);
      expect(code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  LIMIT_MS + 10_000,
);
