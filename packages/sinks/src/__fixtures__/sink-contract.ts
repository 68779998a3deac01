/**
 * The contract every sink passes (sink.ts states it), run through the same
 * path the aggregator uses: the config is validated by the `sinks` schema
 * built from the registry, as the aggregator's (so defaults come from the
 * spec), and the sink is made by its spec's `create`.
 *
 * A harness starts the sink's destination (a directory, s3rver, the Firehose
 * test endpoint), reads back what it holds, and can make it fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { RetryableError, silentLogger, validateConfig } from '@tributary/core';
import type { LineBatch, ObjectSink, Sink, SinkObject } from '@tributary/core';
import { type SinkRegistry, sinkRegistry, sinksConfigSpec } from '../registry';
import type { SinkSpec, SinkStats } from '../spec';

export interface Destination {
  /** The sink's config as a user writes it (validated and defaulted by the contract). */
  config: Record<string, unknown>;
  /** Object sinks: every stored object, by its path below the sink's prefix. */
  objects?(): Promise<Map<string, Buffer>>;
  /** Line sinks: every line delivered so far. */
  lines?(): Promise<string[]>;
  /** Makes every write fail, as an outage does, until `restore`. */
  fail(): Promise<void>;
  restore(): Promise<void>;
  stop(): Promise<void>;
}

export interface SinkHarness {
  spec: SinkSpec;
  start(dir: string): Promise<Destination>;
}

const ndjson = (lines: string[]) => Buffer.from(lines.map((l) => `${l}\n`).join(''));

function object(path: string, members: string[][]): SinkObject {
  return { path, body: members.map((lines) => gzipSync(ndjson(lines))), events: members.flat().length };
}

function lineBatch(parts: string[][]): LineBatch {
  return {
    parts: parts.map(ndjson),
    lineEnds: parts.map((lines) => {
      let end = 0;
      return Uint32Array.from(lines, (l) => {
        end += Buffer.byteLength(l) + 1;
        return end;
      });
    }),
    events: parts.flat().length,
    deadLetters: [],
  };
}

const line = (n: number) => JSON.stringify({ _id: `c-${n}`, _tag: 'app.web', n, msg: `event ${n}` });

/** Defines the contract's tests for one sink type; `registry` must hold the harness's spec. */
export function sinkContract(harness: SinkHarness, registry: SinkRegistry = sinkRegistry): void {
  describe(`sink contract: ${harness.spec.type}`, () => {
    let dir: string;
    let dest: Destination;
    let sink: Sink;
    let stats: SinkStats[];
    let closed: boolean;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), `trb-sink-${harness.spec.type}-`));
      dest = await harness.start(dir);
      const config = validateConfig(sinksConfigSpec(registry), { sinks: [dest.config] });
      stats = [];
      closed = false;
      sink = await harness.spec.create(config.sinks[0], {
        logger: silentLogger,
        backoff: { initialMs: 1, maxMs: 10 },
        onStats: (s) => stats.push(s),
      });
    });

    afterEach(async () => {
      if (!closed) await sink.close();
      await dest.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const put = (s: Sink, data: { objects: SinkObject[]; lines: LineBatch }) =>
      s.kind === 'objects' ? s.put(data.objects) : s.put(data.lines);

    async function readBack(): Promise<{ objects: Map<string, Buffer>; lines: string[] }> {
      if (sink.kind === 'objects') return { objects: await (dest.objects as () => Promise<Map<string, Buffer>>)(), lines: [] };
      return { objects: new Map(), lines: await (dest.lines as () => Promise<string[]>)() };
    }

    test('what is written reads back whole', async () => {
      const objects = [
        object('app.web/dt=2026-11-27/hour=11/part-0-0.json.gz', [[line(1), line(2)], [line(3)]]),
        object('app.db/dt=2026-11-27/hour=11/part-0-3.json.gz', [[line(4)]]),
      ];
      await put(sink, {
        objects,
        lines: lineBatch([
          [line(1), line(2)],
          [line(3), line(4)],
        ]),
      });
      const back = await readBack();
      if (sink.kind === 'objects') {
        expect([...back.objects.keys()].sort()).toEqual(objects.map((o) => o.path).sort());
        for (const o of objects) expect(back.objects.get(o.path)).toEqual(Buffer.concat(o.body));
      } else {
        expect(back.lines.sort()).toEqual([1, 2, 3, 4].map(line).sort());
      }
    });

    test('writing the same object again replaces it (object sinks: a replay overwrites, never adds)', async () => {
      if (sink.kind !== 'objects') {
        expect(sink.kind).toBe('lines'); // line sinks are at-least-once: each line carries a stable _id instead
        return;
      }
      const path = 'app.web/dt=2026-11-27/hour=11/part-0-0.json.gz';
      const objectSink: ObjectSink = sink;
      await objectSink.put([object(path, [[line(1)]])]);
      const replay = object(path, [[line(1), line(2)]]);
      await objectSink.put([replay]);
      const back = await readBack();
      expect([...back.objects.keys()]).toEqual([path]);
      expect(back.objects.get(path)).toEqual(Buffer.concat(replay.body));
    });

    test('a failing destination rejects with a RetryableError, and the same put succeeds once it is back', async () => {
      const data = {
        objects: [object('app.web/dt=2026-11-27/hour=12/part-0-9.json.gz', [[line(9)]])],
        lines: lineBatch([[line(9)]]),
      };
      await dest.fail();
      const err = await put(sink, data).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RetryableError);
      expect((err as RetryableError).retriable).toBe(true);
      expect((err as RetryableError).code).toMatch(/^TRB_SINK_/);
      await dest.restore();
      await put(sink, data);
      const back = await readBack();
      if (sink.kind === 'objects') expect(back.objects.get(data.objects[0].path)).toEqual(Buffer.concat(data.objects[0].body));
      else expect(back.lines).toEqual([line(9)]);
    });

    test('close resolves, and what was written stays there', async () => {
      await put(sink, {
        objects: [object('app.web/dt=2026-11-27/hour=13/part-0-20.json.gz', [[line(20)]])],
        lines: lineBatch([[line(20)]]),
      });
      closed = true;
      await sink.close();
      const back = await readBack();
      if (sink.kind === 'objects') expect(back.objects.size).toBe(1);
      else expect(back.lines).toEqual([line(20)]);
    });
  });
}
