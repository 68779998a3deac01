/**
 * The aggregator on a real Kafka broker, reading what its own writer does
 * not write any more (the fake cluster covers the same paths on every run:
 * packages/log/src/kafka/reader.test.ts, "stored values"):
 * - the value format of earlier versions: plain entries with no codec header,
 *   in produce requests kafkajs gzipped as a whole (CompressionTypes.GZIP),
 *   which kafkajs inflates on fetch;
 * - values that do not decode (a codec this version does not read, `codec:
 *   gzip` without the gzip magic, a gzip cut short): each record becomes one
 *   dead letter with its stored bytes, counted as malformed, and reading goes
 *   on past it, committed; a chunk written after that commit is delivered
 *   and committed in turn with nothing before it read again.
 * Skipped without a broker: the suite's own from ../shared/kafka
 * (test/kafka-broker.js), or KAFKA_BROKERS.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { createLogger, validateConfig } from '@tributary/core';
import { EventTime, encodeEntry } from '@tributary/forward-protocol';
import { readOutput, tempDir, waitFor } from '@tributary/test-kit';
import {
  type OffsetsReader,
  type RawMessage,
  createTopic,
  openOffsets,
  produceRaw,
} from '../../packages/log/src/kafka/__fixtures__/raw-producer';

const maybe = process.env.KAFKA_BROKERS ? describe : describe.skip;

const EVENTS_PER_CHUNK = 50;
const TIME = new EventTime(1_700_000_000, 0);
/** The egress commit is polled this often, at most COMMIT_POLLS times and for COMMIT_WAIT_MS. */
const COMMIT_POLL_MS = 200;
const COMMIT_POLLS = 150;
const COMMIT_WAIT_MS = 30_000;

/** Chunk `i`'s entries: events n = i * EVENTS_PER_CHUNK … + EVENTS_PER_CHUNK - 1. */
function entries(i: number): Buffer {
  return Buffer.concat(
    Array.from({ length: EVENTS_PER_CHUNK }, (_, j) => {
      const n = i * EVENTS_PER_CHUNK + j;
      return encodeEntry(TIME, { n, msg: `event ${n}` });
    }),
  );
}

const headers = (key: string, count: number, codec?: string) => ({
  tag: 'app.old',
  key,
  count: String(count),
  ...(codec ? { codec } : {}),
});

/** As versions before the per-value codec wrote a chunk: its entries as they are, no codec header. */
const oldFormat = (i: number): RawMessage => ({ key: `old-${i}`, value: entries(i), headers: headers(`old-${i}`, EVENTS_PER_CHUNK) });
/** As this version writes a chunk: its entries gzipped, `codec: gzip`. */
const newFormat = (i: number): RawMessage => ({
  key: `new-${i}`,
  value: gzipSync(entries(i)),
  headers: headers(`new-${i}`, EVENTS_PER_CHUNK, 'gzip'),
});

/** The group's committed offset once it is `want`, or the last one read when polling ran out (COMMIT_POLLS reads, COMMIT_WAIT_MS). */
async function committedOnceAt(reader: OffsetsReader, want: number): Promise<number> {
  const deadline = Date.now() + COMMIT_WAIT_MS;
  let committed = -1;
  for (let poll = 0; poll < COMMIT_POLLS && Date.now() < deadline; poll++) {
    committed = (await reader.read()).committed;
    if (committed === want) break;
    await new Promise((r) => setTimeout(r, COMMIT_POLL_MS));
  }
  return committed;
}

/** Dead-letter lines the file sink holds (objects under `_dead_letter/`). */
function deadLetters(out: string): Array<Record<string, unknown>> {
  let files: string[];
  try {
    files = readdirSync(join(out, '_dead_letter'));
  } catch {
    return [];
  }
  return files.flatMap((f) =>
    gunzipSync(readFileSync(join(out, '_dead_letter', f)))
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

async function metric(port: number, line: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? Number.NaN : Number(found.slice(line.length + 1));
}

maybe('aggregator on a real Kafka topic written by earlier versions and broken writers', () => {
  const dir = tempDir('kafka-stored-values');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("plain values in kafkajs's per-request gzip are delivered once; values that do not decode are one dead letter each, and reading goes on", async () => {
    const brokers = (process.env.KAFKA_BROKERS as string).split(',');
    const suffix = `${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
    const topic = `trb-stored-values-${suffix}`;
    const group = `trb-stored-values-${suffix}`;
    await createTopic(brokers, topic);

    // An earlier version wrote chunks 0-3, two per produce request, each request gzipped by kafkajs.
    await produceRaw(brokers, topic, [oldFormat(0), oldFormat(1)], true);
    await produceRaw(brokers, topic, [oldFormat(2), oldFormat(3)], true);
    // Values this version cannot read, between readable ones (the current format, then the old one again).
    const noMagic = Buffer.from('not gzip at all');
    const otherCodec = Buffer.from('zstd bytes');
    const cut = gzipSync(entries(99)).subarray(0, 40);
    await produceRaw(
      brokers,
      topic,
      [
        { key: 'bad-no-magic', value: noMagic, headers: headers('bad-no-magic', 3, 'gzip') },
        newFormat(4),
        { key: 'bad-codec', value: otherCodec, headers: headers('bad-codec', 4, 'zstd') },
        { key: 'bad-cut', value: cut, headers: headers('bad-cut', 5, 'gzip') },
      ],
      false,
    );
    await produceRaw(brokers, topic, [oldFormat(5)], true);
    // One admin client for every offset read below.
    const reader = await openOffsets(brokers, topic, group);
    try {
      const { end } = await reader.read();
      expect(end).toBe(9);

      const out = join(dir, 'out');
      const logLines: Array<{ code?: string; msg?: string }> = [];
      const logger = createLogger('test', 'warn', { write: (line: string) => logLines.push(JSON.parse(line)) });
      const agg = await Aggregator.start(
        validateConfig(aggregatorConfigSpec, {
          forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false },
          log: { type: 'kafka', kafka: { brokers, topic, partitions: 1, replication_factor: 1, min_insync_replicas: 1 } },
          egress: { group, max_wait_ms: 100 },
          sinks: [{ name: 'file', type: 'file', path: out }],
          metrics: { port: 0 },
        }),
        logger,
      );
      try {
        const want = 6 * EVENTS_PER_CHUNK; // chunks 0-5
        await waitFor(
          () => readOutput(out).lines.length >= want && deadLetters(out).length >= 3,
          60_000,
          `${want} events in the file sink and 3 dead letters`,
        );
        // Reading went on past every record: the group's commit reaches the partition's end.
        expect(await committedOnceAt(reader, end)).toBe(end);

        // Every event of the old and current values once, whatever the compression of the request it came in.
        const { lines } = readOutput(out);
        expect(lines.map((l) => l.n as number).sort((a, b) => a - b)).toEqual(Array.from({ length: want }, (_, n) => n));
        expect(new Set(lines.map((l) => l._tag))).toEqual(new Set(['app.old']));
        expect(lines.filter((l) => l._id === 'old-0#0')).toHaveLength(1);

        // Each value that does not decode is one dead letter, with the bytes the topic holds.
        const dead = deadLetters(out).sort((a, b) => String(a._id).localeCompare(String(b._id)));
        expect(dead.map((d) => [d._id, d._tag])).toEqual([
          ['bad-codec', 'app.old'],
          ['bad-cut', 'app.old'],
          ['bad-no-magic', 'app.old'],
        ]);
        const stored = (d: Record<string, unknown>) => Buffer.from(d.msgpack_base64 as string, 'base64');
        expect(stored(dead[0]).equals(otherCodec)).toBe(true);
        expect(stored(dead[1]).equals(cut)).toBe(true);
        expect(stored(dead[2]).equals(noMagic)).toBe(true);
        expect(String(dead[0].reason)).toMatch(/codec header is "zstd".*\(4 events\)/);
        expect(String(dead[1].reason)).toMatch(/does not inflate/);
        expect(String(dead[2].reason)).toMatch(/not gzip.*\(3 events\)/);
        // one per record (the reason gives its events): a record read again after the commit would show here
        const malformed = 'tributary_egress_dead_letter_events_total{reason="malformed"}';
        expect(await metric(agg.ports.metrics, malformed)).toBe(3);
        expect(logLines.filter((l) => l.code === 'TRB_LOG_CORRUPT')).toHaveLength(2);

        // Nothing comes back after the commit: a chunk written after it is delivered and committed in
        // turn, and the sink holds it once beside the others, with the same dead letters.
        await produceRaw(brokers, topic, [newFormat(6)], false);
        const more = want + EVENTS_PER_CHUNK;
        await waitFor(() => readOutput(out).lines.length >= more, 60_000, `${more} events in the file sink`);
        expect(await committedOnceAt(reader, end + 1)).toBe(end + 1);
        expect(
          readOutput(out)
            .lines.map((l) => l.n as number)
            .sort((a, b) => a - b),
        ).toEqual(Array.from({ length: more }, (_, n) => n));
        expect(deadLetters(out)).toHaveLength(3);
        expect(await metric(agg.ports.metrics, malformed)).toBe(3);
      } finally {
        await agg.stop();
      }
    } finally {
      await reader.close();
    }
  }, 120_000);
});
