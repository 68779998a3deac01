/**
 * Property test: random, mutated and truncated byte streams never crash the
 * decoder with anything but a coded TributaryError, and never hang.
 */
import { randomBytes } from 'node:crypto';
import { FrameDecoder } from './decoder';
import { encodeEntry, encodeForward, encodeMessage, encodePackedForward } from './encoder';
import { newEntryHead } from './entries';
import { TributaryError } from './errors';
import { EventTime } from './event-time';
import { parseJsonRequest } from './json-request';
import { type MessageParts, chunkIdText, isAckedMessage, isPlainMessage, parseRequest } from './request';

// Deterministic PRNG so a failure reproduces.
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const t = new EventTime(1700000000, 1);
const seeds = [
  encodeMessage('a.b', t, { msg: 'hello', n: 1, nested: { x: [1, 2, 3] } }, { chunk: 'abc' }),
  encodeForward('a.b', [encodeEntry(t, { a: 1 }), encodeEntry(5, { b: 'x' })], { chunk: 'def' }),
  encodePackedForward('a.b', Buffer.concat([encodeEntry(t, { a: 1 }), encodeEntry(t, { b: 2 })]), { chunk: 'g', size: 2 }),
  encodePackedForward('a.b', Buffer.concat([encodeEntry(t, { a: 1 }), encodeEntry(t, { b: 2 })]), { compressed: 'gzip' }),
];

function feed(bytes: Buffer, random: () => number): void {
  const d = new FrameDecoder(64 * 1024);
  let pos = 0;
  try {
    while (pos < bytes.length) {
      const n = 1 + Math.floor(random() * 64);
      for (const frame of d.push(bytes.subarray(pos, pos + n))) {
        try {
          if (d.format === 'json') parseJsonRequest(frame.toString());
          else parseRequest(frame, { maxDecompressedBytes: 1024 * 1024 });
        } catch (err) {
          expect(err).toBeInstanceOf(TributaryError);
          expect((err as TributaryError).code).toMatch(/^TRB_FWD_/);
        }
      }
      pos += n;
    }
  } catch (err) {
    expect(err).toBeInstanceOf(TributaryError);
  }
}

test('random bytes', () => {
  const random = rng(1);
  for (let i = 0; i < 1500; i++) feed(randomBytes(1 + Math.floor(random() * 512)), random);
});

test('mutated valid requests', () => {
  const random = rng(2);
  for (let i = 0; i < 8000; i++) {
    const seed = Buffer.from(seeds[i % seeds.length]);
    const flips = 1 + Math.floor(random() * 4);
    for (let f = 0; f < flips; f++) seed[Math.floor(random() * seed.length)] = Math.floor(random() * 256);
    feed(seed, random);
  }
});

test('truncated valid requests produce no frame and no error', () => {
  for (const seed of seeds) {
    for (let cut = 0; cut < seed.length; cut++) {
      expect(new FrameDecoder().push(seed.subarray(0, cut))).toEqual([]);
    }
  }
});

test('the plain-Message fast path accepts only what parseRequest accepts, with the same tag and entry bytes', () => {
  const random = rng(3);
  const messages = [
    encodeMessage('app.x', t, { msg: 'hello', n: 1 }),
    encodeMessage('app.x', 1700000005, { a: [1, 2], b: null }),
    encodeMessage('a', new EventTime(1, 999_999_999), {}),
    encodeMessage('app.x', t, { msg: 'acked' }, { chunk: 'c1' }),
    encodeMessage('app.x', 0, { now: true }),
  ];
  const plainMessage: MessageParts = { tagStart: 0, tagEnd: 0, entryStart: 0, recordEnd: 0, ackStart: 0, head: newEntryHead() };
  let fast = 0;
  for (let i = 0; i < 20000; i++) {
    const frame = Buffer.from(messages[i % messages.length]);
    const flips = Math.floor(random() * 3); // 0 flips: the valid request itself
    for (let f = 0; f < flips; f++) frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
    let ranges: number[];
    try {
      ranges = new FrameDecoder().pushRanges(frame).ranges;
    } catch {
      continue; // not msgpack: the framer refuses it before any parsing
    }
    if (ranges.length !== 2 || ranges[0] !== 0 || ranges[1] !== frame.length) continue; // not one complete value
    if (!isPlainMessage(frame, 0, frame.length, plainMessage)) continue;
    fast++;
    const parsed = parseRequest(Buffer.from(frame)); // must not throw
    expect(parsed.mode).toBe('message');
    expect(parsed.count).toBe(1);
    expect(parsed.ack).toBeUndefined();
    expect(parsed.tag).toBe(frame.toString('utf8', plainMessage.tagStart, plainMessage.tagEnd));
    const entry = Buffer.from(frame.subarray(plainMessage.entryStart));
    entry[0] = 0x92;
    expect(parsed.entries.equals(entry)).toBe(true);
  }
  expect(fast).toBeGreaterThan(5000);
});

test("fluent-logger's acked-message fast path accepts only what parseRequest accepts, with the same tag, entry, id and ack bytes", () => {
  const random = rng(4);
  const messages = [
    encodeMessage('app.x', t, { msg: 'hello', n: 1 }, { chunk: 'c1' }),
    encodeMessage('app.x', 1700000005, { a: [1, 2], b: null }, { chunk: 'YWJjZGVmZ2hpamtsbW5vcA==' }),
    encodeMessage('a', new EventTime(1, 999_999_999), {}, { chunk: 'x'.repeat(40) }),
    encodeMessage('app.x', t, { msg: 'plain' }),
    encodeMessage('app.x', t, { msg: 'sized' }, { chunk: 'c2', size: 1 }),
  ];
  const parts: MessageParts = { tagStart: 0, tagEnd: 0, entryStart: 0, recordEnd: 0, ackStart: 0, head: newEntryHead() };
  let fast = 0;
  for (let i = 0; i < 20000; i++) {
    const frame = Buffer.from(messages[i % messages.length]);
    const flips = Math.floor(random() * 3); // 0 flips: the valid request itself
    for (let f = 0; f < flips; f++) frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
    let ranges: number[];
    try {
      ranges = new FrameDecoder().pushRanges(frame).ranges;
    } catch {
      continue;
    }
    if (ranges.length !== 2 || ranges[0] !== 0 || ranges[1] !== frame.length) continue;
    if (!isAckedMessage(frame, 0, frame.length, parts)) continue;
    fast++;
    const parsed = parseRequest(Buffer.from(frame)); // must not throw
    expect(parsed.mode).toBe('message');
    expect(parsed.count).toBe(1);
    expect(parsed.tag).toBe(frame.toString('utf8', parts.tagStart, parts.tagEnd));
    expect(parsed.ack?.equals(frame.subarray(parts.ackStart))).toBe(true);
    expect(parsed.chunkId).toBe(chunkIdText(frame, parts.ackStart, frame.length));
    const entry = Buffer.from(frame.subarray(parts.entryStart, parts.recordEnd));
    entry[0] = 0x92;
    expect(parsed.entries.equals(entry)).toBe(true);
  }
  expect(fast).toBeGreaterThan(5000);
});
