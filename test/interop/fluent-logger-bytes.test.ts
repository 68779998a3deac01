/**
 * fluent-logger's own bytes through the forwarder's framer and coalescer:
 * its acked messages (an integer time as msgpack-lite writes `Date.now() /
 * 1000`, a random base64 chunk id) are read as parseRequest reads each one,
 * merged into one run whose ids are the client's. The coalescer's fast path
 * takes these frames (integer seconds as uint32, a fixstr id); the general
 * path gives the same result, and this test holds the two to it.
 */
import { DEFAULT_ADMISSION, DEFAULT_MAX_DECOMPRESSED_BYTES, FrameDecoder, parseRequest } from '@tributary/forward-protocol';
import { MessageCoalescer } from '../../packages/forward-protocol/src/coalescer';

// the client's sender class, as its `emit` uses it (no connection needed to make a packet)
const FluentSender = require('fluent-logger/lib/sender');

test("fluent-logger's acked messages (integer time, base64 id) become one run, each event and id as parseRequest reads its frame", () => {
  const sender = new FluentSender('app', { requireAckResponse: true });
  const items = Array.from({ length: 50 }, (_, i) =>
    sender._makePacketItem('app.web', undefined, { i, msg: `GET /orders/${i}`, nested: { ok: true } }),
  );
  const frames: Buffer[] = items.map((it: { packet: Buffer }) => Buffer.from(it.packet));
  // the shape the fast path takes: a 4-element array, the tag, then a uint32 of seconds
  expect([frames[0][0], frames[0][1 + 1 + 'app.web'.length]]).toEqual([0x94, 0xce]);
  const expected = frames.map((f) => parseRequest(Buffer.from(f)));

  const decoder = new FrameDecoder();
  const { buf, ranges } = decoder.pushRanges(Buffer.concat(frames));
  const out: ReturnType<typeof parseRequest>[] = [];
  const error = new MessageCoalescer(DEFAULT_ADMISSION, DEFAULT_MAX_DECOMPRESSED_BYTES, true).coalesce(buf, ranges, 0, decoder, out);
  expect(error).toBeNull();
  expect(out).toHaveLength(1);
  expect(out[0].count).toBe(50);
  expect(out[0].entries.equals(Buffer.concat(expected.map((e) => e.entries)))).toBe(true);
  expect(out[0].ids?.chunkIds).toEqual(items.map((it: { options: { chunk: string } }) => it.options.chunk));
  expect(out[0].ids?.chunkIds).toEqual(expected.map((e) => e.chunkId));
});
