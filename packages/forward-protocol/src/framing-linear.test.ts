/**
 * Framing is linear in the bytes received, whatever the split (issue 10
 * item 5): the CPU time per MiB of a large frame pushed in 4 KiB writes stays
 * within a small factor of the same bytes pushed in 1 MiB writes (it was
 * 23.7 s for 15 MiB before: every read re-scanned and re-copied the frame).
 */
import { FrameDecoder } from './decoder';
import { encodeEntry, encodeForward, encodeMessage, encodePackedForward } from './encoder';

const MIB = 1024 * 1024;

function cpuMs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t0);
  return (u.user + u.system) / 1000;
}

/** Pushes `bytes` in writes of `step`; returns CPU ms and the frames framed. */
function frame(bytes: Buffer, step: number): { ms: number; frames: number } {
  const d = new FrameDecoder(64 * MIB);
  let frames = 0;
  const ms = cpuMs(() => {
    for (let i = 0; i < bytes.length; i += step) frames += d.pushRanges(bytes.subarray(i, i + step)).ranges.length / 2;
  });
  return { ms, frames };
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

test.each(inputs)('%s: CPU per MiB does not depend on the write size', (_name, bytes, frames) => {
  frame(bytes, 64 * 1024); // warm up
  const big = frame(bytes, MIB);
  const small = frame(bytes, 4096);
  expect(big.frames).toBe(frames);
  expect(small.frames).toBe(frames);
  const mib = bytes.length / MIB;
  // Linear: 4 KiB writes cost at most a few times 1 MiB writes (one call per write), and well under 100 ms per MiB.
  expect(small.ms / mib).toBeLessThan(Math.max(5 * (big.ms / mib), 25));
  expect(small.ms / mib).toBeLessThan(100);
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
