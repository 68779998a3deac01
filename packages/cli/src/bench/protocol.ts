/**
 * Forward Protocol codec benchmark (no sockets): Message-mode decode and
 * re-batch, PackedForward pass-through (frame, validate, count),
 * PackedForward encode, and egress's transcoder (entries → NDJSON lines, no
 * gzip) on the usual fixarray entries and on Fluent Bit's array32 ones.
 * Single thread, so every figure is one core.
 */
import {
  EventTime,
  FrameDecoder,
  TagCache,
  countEntries,
  encodeEntry,
  encodeMessage,
  encodePackedForward,
  parseRequest,
} from '@tributary/forward-protocol';
import { DEFAULT_FIELDS, runEncodeJob } from '@tributary/sinks';
import { type BenchResult, RssSampler } from './stats';

/** A ~200-byte record, as in the benchmark shape. */
export function sampleRecord(i: number): Record<string, unknown> {
  return {
    level: 'info',
    msg: `GET /api/v1/orders/${i} completed`,
    status: 200,
    duration_ms: 12.5,
    host: 'ip-10-0-12-34.ec2.internal',
    request_id: `req-${i.toString(16).padStart(12, '0')}`,
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64)',
  };
}

function timeIt(seconds: number, fn: () => { events: number; bytes: number }): { events: number; bytes: number; seconds: number } {
  let events = 0;
  let bytes = 0;
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  for (let i = 0; i < 1_000_000 && now < limit; i++) {
    const r = fn();
    events += r.events;
    bytes += r.bytes;
    now = process.hrtime.bigint();
  }
  return { events, bytes, seconds: Number(now - start) / 1e9 };
}

export function runProtocolBench(seconds = 3): BenchResult[] {
  const results: BenchResult[] = [];
  const t = new EventTime(1700000000, 1);

  // Message mode: 10,000 single-event messages in one stream, framed, parsed and re-batched into entries.
  const messages = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => encodeMessage('app.web', t, sampleRecord(i))));
  let rss = new RssSampler();
  let r = timeIt(seconds, () => {
    const d = new FrameDecoder();
    const limits = { maxDecompressedBytes: 1 << 26, reuseFrame: true, tags: new TagCache() }; // one stream: one connection's tag cache
    const parts: Buffer[] = [];
    const stream = Buffer.from(messages); // a fresh "socket read" each round: the parser owns it, as the server does
    for (let off = 0; off < stream.length; off += 65536) {
      for (const f of d.push(stream.subarray(off, off + 65536))) parts.push(parseRequest(f, limits).entries);
    }
    const batch = Buffer.concat(parts);
    return { events: parts.length, bytes: batch.length };
  });
  results.push({ name: 'decode Message mode + re-batch (1 core)', ...r, peakRssMb: rss.stop() });

  // PackedForward pass-through: chunks of 1,000 events of ~200 bytes, framed from 64 KiB reads, validated and counted.
  const entries = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeEntry(t, sampleRecord(i))));
  const chunks = Buffer.concat(
    Array.from({ length: 20 }, (_, i) => encodePackedForward('app.web', entries, { chunk: `c${i}`, size: 1000 })),
  );
  rss = new RssSampler();
  r = timeIt(seconds, () => {
    const d = new FrameDecoder();
    let events = 0;
    for (let off = 0; off < chunks.length; off += 65536) {
      for (const f of d.push(chunks.subarray(off, off + 65536))) events += parseRequest(f).count;
    }
    return { events, bytes: chunks.length };
  });
  results.push({ name: 'pass-through PackedForward 1000x200B (1 core)', ...r, peakRssMb: rss.stop() });

  rss = new RssSampler();
  r = timeIt(seconds, () => ({ events: countEntries(entries), bytes: entries.length }));
  results.push({ name: 'count entries in place (1 core)', ...r, peakRssMb: rss.stop() });

  rss = new RssSampler();
  r = timeIt(seconds, () => {
    const frame = encodePackedForward('app.web', entries, { chunk: 'c', size: 1000 });
    return { events: 1000, bytes: frame.length };
  });
  results.push({ name: 'encode PackedForward from entries (1 core)', ...r, peakRssMb: rss.stop() });

  const records = Array.from({ length: 1000 }, (_, i) => sampleRecord(i));
  rss = new RssSampler();
  r = timeIt(seconds, () => {
    const e = Buffer.concat(records.map((rec) => encodeEntry(t, rec)));
    const frame = encodePackedForward('app.web', e, { chunk: 'c', size: 1000 });
    return { events: 1000, bytes: frame.length };
  });
  results.push({ name: 'encode PackedForward from JS records (1 core)', ...r, peakRssMb: rss.stop() });

  // Egress's transcoder on one 1,000-event chunk, lines dropped (no gzip): its own cost, as an encoder thread pays it.
  const transcode = (name: string, chunk: Buffer) => {
    const record = { tag: 'app.web', idPrefix: 'k', partition: 0, start: 0, end: chunk.length };
    rss = new RssSampler();
    r = timeIt(seconds, () => {
      const out = runEncodeJob({ entries: chunk, records: [record], fields: DEFAULT_FIELDS, gzipLevels: [], ndjson: false });
      if (out.events !== 1000) throw new Error(`The transcoder wrote ${out.events} of 1000 events (${out.deadLetters[0]?.reason}).`);
      return { events: out.events, bytes: chunk.length };
    });
    results.push({ name, ...r, peakRssMb: rss.stop() });
  };
  transcode('egress transcode 1000x200B to NDJSON (1 core)', entries);
  // Fluent Bit 4.2 writes every entry header as array32 (dd 00 00 00 02).
  const array32 = Buffer.from([0xdd, 0, 0, 0, 2]);
  const fluentBit = Buffer.concat(Array.from({ length: 1000 }, (_, i) => [array32, encodeEntry(t, sampleRecord(i)).subarray(1)]).flat());
  transcode('egress transcode, Fluent Bit array32 entries (1 core)', fluentBit);
  return results;
}
