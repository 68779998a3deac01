/**
 * Framing is linear in the bytes received, whatever the split (issue 10
 * item 5): a large frame pushed in 4 KiB writes is scanned once and copied a
 * bounded number of times, as in 1 MiB writes. Before, every read re-scanned
 * and re-copied the frame (23.7 s of CPU for 15 MiB). The decoder counts its
 * own work in bytes, so this holds on any machine at any load: no clock.
 */
import { FrameDecoder } from './decoder';
import { encodeEntry, encodeForward, encodeMessage, encodePackedForward } from './encoder';

const MIB = 1024 * 1024;

/** Pushes `bytes` in writes of `step`; returns the frames framed and the decoder's work. */
function frame(bytes: Buffer, step: number): { frames: number; scannedBytes: number; copiedBytes: number } {
  const d = new FrameDecoder(64 * MIB);
  let frames = 0;
  for (let i = 0; i < bytes.length; i += step) frames += d.pushRanges(bytes.subarray(i, i + step)).ranges.length / 2;
  return { frames, ...d.work };
}

const entry = encodeEntry(1700000000, { msg: 'hello', n: 1 });
const count = Math.floor((8 * MIB) / entry.length);
const inputs: Array<[string, Buffer, number]> = [
  [
    'Forward mode, one 8 MiB frame',
    encodeForward(
      't',
      Array.from({ length: count }, () => entry),
    ),
    1,
  ],
  [
    'JSON, one 8 MiB frame',
    Buffer.from(JSON.stringify(['t', Array.from({ length: count }, () => [1700000000, { msg: 'hello', n: 1 }])])),
    1,
  ],
  [
    'Message mode, 8 MiB of small frames',
    Buffer.concat(Array.from({ length: count / 2 }, () => encodeMessage('t', 1700000000, { msg: 'hi' }))),
    count / 2,
  ],
];

test.each(inputs)('%s: each byte is scanned once and copied a bounded number of times, whatever the write size', (_name, bytes, frames) => {
  for (const step of [MIB, 64 * 1024, 4096, 1000]) {
    const w = frame(bytes, step);
    expect(w.frames).toBe(frames);
    // Re-scanning the incomplete frame on every read would be about bytes² / (2 × step): 8 GiB at 4 KiB writes.
    expect(w.scannedBytes).toBeGreaterThanOrEqual(bytes.length); // the counter counts: every byte is scanned
    expect(w.scannedBytes).toBeLessThanOrEqual(bytes.length + 16);
    // The accumulator grows by doubling: each byte is copied at most about three times.
    expect(w.copiedBytes).toBeLessThanOrEqual(3 * bytes.length);
  }
});

test('bytes that arrive in one read holding whole frames are neither copied nor scanned twice', () => {
  const bytes = Buffer.concat(Array.from({ length: 1000 }, () => encodeMessage('t', 1700000000, { msg: 'hi' })));
  const w = frame(bytes, bytes.length);
  expect(w).toEqual({ frames: 1000, scannedBytes: bytes.length, copiedBytes: 0 });
});

test('a frame split over reads is handed out in one buffer of about its own size, copied once', () => {
  // A PackedForward frame of ~200 KB (the bench's) followed by the start of the next, in 64 KiB reads.
  const entries = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeEntry(1700000000, { msg: 'x'.repeat(150), n: i })));
  const one = encodePackedForward('t', entries);
  const stream = Buffer.concat([one, one]);
  const d = new FrameDecoder();
  const handed: Buffer[] = [];
  let frames = 0;
  for (let i = 0; i < stream.length; i += 64 * 1024) {
    // Each read in its own memory, as from a socket.
    const read = Buffer.from(stream.subarray(i, i + 64 * 1024));
    const { buf, ranges } = d.pushRanges(read);
    if (ranges.length) handed.push(buf);
    frames += ranges.length / 2;
    // Until a frame completes, the reads are held as they came (no accumulator twice the frame).
    expect(d.bufferedBytes).toBeLessThanOrEqual(one.length);
  }
  expect(frames).toBe(2);
  // The buffer holding a completed frame is the frame plus at most the rest of its last read.
  for (const b of handed) expect(b.buffer.byteLength).toBeLessThanOrEqual(one.length + 64 * 1024);
});
