/**
 * The state a scan keeps between reads belongs to its owner: a decoder's
 * `ScanState`, a connection's `TagCache`. Two connections read interleaved
 * (what a module-level hint or cache could mix up) each get their own frames,
 * container counts and tags.
 */
import { pack } from 'msgpackr';
import { DEFAULT_ADMISSION, admitEntries } from './admission';
import { MessageCoalescer } from './coalescer';
import { FrameDecoder } from './decoder';
import { encodeEntry, encodeForward, encodeMessage, encodePackedForward } from './encoder';
import { ProtocolErrorCode } from './errors';
import { EventTime } from './event-time';
import { INCOMPLETE, type ScanState, newScanState, skipValue } from './msgpack-scan';
import { DEFAULT_MAX_DECOMPRESSED_BYTES, type ForwardChunk, TagCache, parseRequest } from './request';

const t = new EventTime(1700000001, 5);

/** Frames of `stream` pushed whole: the frames' bytes and their container counts. */
function whole(stream: Buffer): { frames: string[]; containers: number[] } {
  const d = new FrameDecoder();
  const { buf, ranges } = d.pushRanges(stream);
  const frames: string[] = [];
  for (let i = 0; i < ranges.length; i += 2) frames.push(buf.toString('hex', ranges[i], ranges[i + 1]));
  return { frames, containers: [...d.frameContainers] };
}

describe('skipValue with a ScanState', () => {
  const value = pack({ a: [1, 2, { b: 'x'.repeat(300) }], c: new Array(20).fill({ d: 1 }) });
  const full = skipValue(value, 0, value.length, 1, newScanState());

  test('resumed at every cut from where it stopped, it ends where a whole scan ends and counts the same containers', () => {
    const ref = newScanState();
    expect(skipValue(value, 0, value.length, 1, ref)).toBe(value.length);
    expect(ref.containers).toBe(1 + 1 + 1 + 1 + 20); // top map, the array, its map, c, c's 20 maps
    for (let cut = 0; cut < value.length; cut++) {
      const s = newScanState();
      expect(skipValue(value, 0, cut, 1, s)).toBe(INCOMPLETE);
      expect(s.need).toBeGreaterThan(cut);
      expect(s.need).toBeLessThanOrEqual(value.length);
      expect(s.pos).toBeLessThanOrEqual(s.need); // past `cut` when a payload runs past it: resume just after it
      expect(skipValue(value, s.pos, value.length, s.remaining, s)).toBe(full);
      expect(s.containers).toBe(ref.containers);
    }
  });

  test('every type byte: each value of every msgpack form ends where its encoding does, and is INCOMPLETE at every cut', () => {
    const h = (hex: string) => Buffer.from(hex.replace(/ /g, ''), 'hex');
    const forms: Buffer[] = [
      h('00'),
      h('7f'),
      h('e0'),
      h('ff'),
      h('c0'),
      h('c2'),
      h('c3'), // fixint, nil, bool
      h('a0'),
      h(`bf${'61'.repeat(31)}`),
      h('d9 01 61'),
      h('da 0001 61'),
      h('db 00000001 61'), // str
      h('c4 02 0102'),
      h('c5 0001 01'),
      h('c6 00000001 01'), // bin
      h('c7 01 05 aa'),
      h('c8 0001 05 aa'),
      h('c9 00000001 05 aa'), // ext
      h('ca 00000000'),
      h('cb 0000000000000000'), // float
      h('cc ff'),
      h('cd ffff'),
      h('ce ffffffff'),
      h('cf ffffffffffffffff'), // uint
      h('d0 ff'),
      h('d1 ffff'),
      h('d2 ffffffff'),
      h('d3 ffffffffffffffff'), // int
      h('d4 01 aa'),
      h('d5 01 aabb'),
      h('d6 01 aabbccdd'),
      h(`d7 00 ${'00'.repeat(8)}`),
      h(`d8 01 ${'00'.repeat(16)}`), // fixext
      h('80'),
      h('81 01 02'),
      h('90'),
      h('92 01 a1 61'),
      h('dc 0001 01'),
      h('dd 00000001 01'),
      h('de 0001 01 02'),
      h('df 00000001 01 02'),
    ];
    for (const form of forms) {
      const padded = Buffer.concat([form, h('c0')]); // a byte after: the value must end before it
      expect([form.toString('hex'), skipValue(padded, 0, padded.length)]).toEqual([form.toString('hex'), form.length]);
      for (let cut = 0; cut < form.length; cut++) expect(skipValue(form, 0, cut)).toBe(INCOMPLETE);
    }
    expect(() => skipValue(h('c1'), 0, 1)).toThrow(/0xc1/);
  });

  test('two scans cut short at once keep their own resume points; a scan without a state touches neither', () => {
    const other = pack(['y'.repeat(1000), { z: [1, 2, 3] }]);
    const a = newScanState();
    const b = newScanState();
    expect(skipValue(value, 0, 17, 1, a)).toBe(INCOMPLETE);
    expect(skipValue(other, 0, 600, 1, b)).toBe(INCOMPLETE);
    const saved: ScanState[] = [{ ...a }, { ...b }];
    // scans that need no hint (admission, egress) leave both states alone, whatever they hit
    expect(skipValue(other, 0, 5)).toBe(INCOMPLETE);
    expect(skipValue(value, 0, value.length)).toBe(value.length);
    expect([a, b]).toEqual(saved);
    expect(skipValue(other, b.pos, other.length, b.remaining, b)).toBe(other.length);
    expect(skipValue(value, a.pos, value.length, a.remaining, a)).toBe(value.length);
    expect(b.containers).toBe(3); // the array, the map, the inner array
  });
});

describe('two FrameDecoders read interleaved', () => {
  const entry = (i: number) => encodeEntry(t, { i, deep: { a: [{ b: i }] }, s: 'v'.repeat(i % 50) });
  const entries = Buffer.concat(Array.from({ length: 40 }, (_, i) => entry(i)));
  const streamA = Buffer.concat([
    encodePackedForward('a.packed', entries, { chunk: 'c1' }),
    Buffer.from([0xc0]), // keep-alive
    ...Array.from({ length: 30 }, (_, i) => encodeMessage('a.msg', t, { i, nest: [[[i]]] })),
    encodeForward('a.fwd', [entry(1), entry(2)]),
  ]);
  const streamB = Buffer.concat([
    ...Array.from({ length: 50 }, (_, i) => encodeMessage('b.msg', t, { j: i, m: { x: 'w'.repeat(i * 7) } })),
    encodePackedForward('b.packed', entries),
  ]);

  test.each([
    [1, 1],
    [7, 13],
    [64, 5],
    [333, 1000],
  ])('in reads of %d and %d bytes, each gets the frames and container counts of its stream pushed whole', (stepA, stepB) => {
    const expectA = whole(streamA);
    const expectB = whole(streamB);
    expect(expectA.frames.length).toBe(32);
    expect(expectB.frames.length).toBe(51);
    const got = [
      { d: new FrameDecoder(), stream: streamA, step: stepA, at: 0, frames: [] as string[], containers: [] as number[] },
      { d: new FrameDecoder(), stream: streamB, step: stepB, at: 0, frames: [] as string[], containers: [] as number[] },
    ];
    for (let round = 0; round < 1_000_000 && got.some((g) => g.at < g.stream.length); round++) {
      for (const g of got) {
        if (g.at >= g.stream.length) continue;
        const { buf, ranges } = g.d.pushRanges(g.stream.subarray(g.at, g.at + g.step));
        g.at += g.step;
        for (let i = 0; i < ranges.length; i += 2) g.frames.push(buf.toString('hex', ranges[i], ranges[i + 1]));
        g.containers.push(...g.d.frameContainers);
      }
    }
    expect(got[0].frames).toEqual(expectA.frames);
    expect(got[0].containers).toEqual(expectA.containers);
    expect(got[1].frames).toEqual(expectB.frames);
    expect(got[1].containers).toEqual(expectB.containers);
    expect(got[0].d.bufferedBytes + got[1].d.bufferedBytes).toBe(0);
  });
});

describe('TagCache', () => {
  test('returns the same string while the bytes repeat, a new one when they change', () => {
    const cache = new TagCache();
    const a1 = Buffer.from('xxapp.axx');
    const first = cache.decode(a1, 2, 7);
    expect(first).toBe('app.a');
    expect(cache.decode(Buffer.from('app.a'), 0, 5)).toBe(first);
    expect(cache.decode(Buffer.from('app.b'), 0, 5)).toBe('app.b');
    a1.write('zzzzz', 2); // the cache holds a copy, not a view of the read
    expect(cache.decode(Buffer.from('app.a'), 0, 5)).toBe('app.a');
  });

  test('a tag admitted under one limit is checked again under another, and a refused tag is refused every time', () => {
    const cache = new TagCache();
    const tag = cache.decode(Buffer.from('long.tag'), 0, 8);
    expect(() => cache.admit(tag, DEFAULT_ADMISSION)).not.toThrow();
    const tight = { ...DEFAULT_ADMISSION, maxTagBytes: 4 };
    for (let i = 0; i < 2; i++) expect(() => cache.admit(tag, tight)).toThrow(expect.objectContaining({ code: ProtocolErrorCode.BadTag }));
    expect(() => cache.admit(tag, DEFAULT_ADMISSION)).not.toThrow();
    const bad = cache.decode(Buffer.from('a\u0001b'), 0, 3);
    for (let i = 0; i < 2; i++)
      expect(() => cache.admit(bad, DEFAULT_ADMISSION)).toThrow(expect.objectContaining({ code: ProtocolErrorCode.BadTag }));
  });

  test('two connections with different tags, read interleaved, each get their own tags', () => {
    const conns = ['conn.one', 'conn.two'].map((tag) => ({
      tag,
      decoder: new FrameDecoder(),
      c: new MessageCoalescer(DEFAULT_ADMISSION, DEFAULT_MAX_DECOMPRESSED_BYTES),
    }));
    const seen: string[][] = [[], []];
    let events = 0;
    for (let round = 0; round < 20; round++) {
      conns.forEach((conn, k) => {
        // alternate plain Messages (the coalescer's cache) with acked ones (parseRequest through the same cache)
        const frames = [encodeMessage(conn.tag, t, { round }), encodeMessage(conn.tag, t, { round }, { chunk: `r${round}` })];
        const { buf, ranges } = conn.decoder.pushRanges(Buffer.concat(frames));
        const out: ForwardChunk[] = [];
        expect(conn.c.coalesce(buf, ranges, 0, conn.decoder, out)).toBeNull();
        for (const chunk of out) {
          seen[k].push(chunk.tag);
          events += chunk.count;
        }
      });
    }
    expect(events).toBe(80);
    expect(new Set(seen[0])).toEqual(new Set(['conn.one']));
    expect(new Set(seen[1])).toEqual(new Set(['conn.two']));
    expect(seen[0].length).toBe(40);
  });

  test('parseRequest with two caches, interleaved: each request keeps its own tag', () => {
    const caches = [new TagCache(), new TagCache()];
    const tags = ['svc.a', 'svc.b'];
    for (let i = 0; i < 10; i++) {
      for (const k of [0, 1]) {
        const chunk = parseRequest(encodePackedForward(tags[k], encodeEntry(t, { i })), {
          maxDecompressedBytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
          admission: DEFAULT_ADMISSION,
          tags: caches[k],
        });
        expect(chunk.tag).toBe(tags[k]);
        expect(chunk.count).toBe(1);
      }
    }
  });
});

test('admitEntries reuses one depth stack across entries: a deep entry between shallow ones leaves no trace', () => {
  const nested = (depth: number): unknown => (depth === 1 ? { leaf: 1 } : { n: nested(depth - 1), after: [1, { x: 2 }] });
  const rec = (depth: number) => encodeEntry(t, nested(depth) as Record<string, unknown>);
  // rec(d) nests d + 1 deep for d >= 2 (the last `after` holds a map)
  const buf = Buffer.concat([rec(1), rec(63), rec(2), rec(62), rec(1)]);
  expect(admitEntries(buf, DEFAULT_ADMISSION)).toBe(5);
  const tooDeep = Buffer.concat([rec(63), rec(1), rec(64)]);
  expect(() => admitEntries(tooDeep, DEFAULT_ADMISSION)).toThrow(/entry 2 nests containers deeper than 64/);
});

describe("the framer's third-element ends", () => {
  // fluent-logger's acked message (4 elements), between a plain message (3) and a PackedForward request (3)
  const record = { msg: 'x'.repeat(40), nested: { a: [1, 2, { b: 'y' }] } };
  const acked = encodeMessage('app.acked', t, record, { chunk: 'id-1' });
  const plain = encodeMessage('app.plain', t, record);
  const packed = encodePackedForward('app.packed', encodeEntry(t, record), { chunk: 'id-2', size: 1 });
  const stream = Buffer.concat([plain, acked, packed, acked]);
  const ref = whole(stream);
  // where the record of `acked` ends, by a scan of its own: the frame's tag, time and record, after the array header
  const recordEnd = skipValue(acked, 1, acked.length, 3);

  test("pushed whole: where a four-element frame's record ends, -1 for the others; the containers as one scan counts them", () => {
    const d = new FrameDecoder();
    const { ranges } = d.pushRanges(stream);
    expect(ranges.length).toBe(8);
    expect([...d.frameThirdEnds]).toEqual([-1, ranges[2] + recordEnd, -1, ranges[6] + recordEnd]);
    expect([...d.frameContainers]).toEqual(ref.containers);
    const one = newScanState();
    expect(skipValue(acked, 0, acked.length, 1, one)).toBe(acked.length);
    expect(d.frameContainers[1]).toBe(one.containers);
  });

  test('cut at every byte: the same frames and containers; a frame that spans the cut has -1, every other its record end', () => {
    // where each frame starts and ends in the stream
    const bounds: Array<[number, number]> = [];
    for (let at = 0, f = 0; f < ref.frames.length; f++) {
      bounds.push([at, at + ref.frames[f].length / 2]);
      at += ref.frames[f].length / 2;
    }
    for (let cut = 1; cut < stream.length; cut++) {
      const d = new FrameDecoder();
      const frames: string[] = [];
      const containers: number[] = [];
      for (const part of [stream.subarray(0, cut), stream.subarray(cut)]) {
        const { buf, ranges } = d.pushRanges(part);
        for (let i = 0; i < ranges.length; i += 2) {
          const [from, to] = bounds[frames.length];
          frames.push(buf.toString('hex', ranges[i], ranges[i + 1]));
          const third = d.frameThirdEnds[i >> 1];
          if (from < cut && cut < to)
            expect(third).toBe(-1); // resumed: its record is walked again by the coalescer
          else if (buf[ranges[i]] === 0x94) expect(third - ranges[i]).toBe(recordEnd);
          else expect(third).toBe(-1);
        }
        containers.push(...d.frameContainers);
      }
      expect(frames).toEqual(ref.frames);
      expect(containers).toEqual(ref.containers);
    }
  });
});
