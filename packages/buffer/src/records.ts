/**
 * The record framing every disk-buffer file uses (chunk files and the acked
 * chunk id journal):
 *
 *   record  = u32 BE payload length | u32 BE crc32(payload) | payload
 *
 * A record is complete only once all its bytes are there, so a torn append
 * shows as an incomplete last record, which readers stop before.
 */
import { crc32 } from 'node:zlib';

export const RECORD_HEADER = 8;

/** One record over `payloads` (checksummed across them), as buffers for one vectored write. */
export function frame(payloads: Buffer[]): Buffer[] {
  let len = 0;
  let sum = 0;
  for (const p of payloads) {
    len += p.length;
    sum = crc32(p, sum);
  }
  const hdr = Buffer.allocUnsafe(RECORD_HEADER);
  hdr.writeUInt32BE(len, 0);
  hdr.writeUInt32BE(sum >>> 0, 4);
  return [hdr, ...payloads];
}

/** The complete, intact records at the start of `data`, and where they end. */
export function readRecords(data: Buffer): { payloads: Buffer[]; goodLength: number } {
  const payloads: Buffer[] = [];
  let pos = 0;
  while (pos + RECORD_HEADER <= data.length) {
    const len = data.readUInt32BE(pos);
    const start = pos + RECORD_HEADER;
    if (start + len > data.length) break;
    const payload = data.subarray(start, start + len);
    if (crc32(payload) !== data.readUInt32BE(pos + 4)) break;
    payloads.push(payload);
    pos = start + len;
  }
  return { payloads, goodLength: pos };
}
