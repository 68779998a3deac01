/**
 * Acknowledgement: `{"ack": <chunk>}` as a msgpack map (never JSON to a msgpack
 * client), where <chunk> is the request's `chunk` option value copied byte for
 * byte, msgpack header included — str or bin, trailing newline kept.
 *
 *   ack = fixmap(1) { fixstr "ack" : chunk-value }   ; 81 a3 61 63 6b <chunk>
 */
export const ACK_PREFIX = Buffer.from([0x81, 0xa3, 0x61, 0x63, 0x6b]);

/** `chunkValue` is the raw msgpack value from `ForwardChunk.ack`. */
export function encodeAck(chunkValue: Buffer): Buffer {
  const out = Buffer.allocUnsafe(ackLength(chunkValue.length));
  writeAck(out, 0, chunkValue, 0, chunkValue.length);
  return out;
}

/** Bytes of the ack of a `chunk` value of `valueBytes` bytes (header included). */
export function ackLength(valueBytes: number): number {
  return ACK_PREFIX.length + valueBytes;
}

/**
 * Writes the ack of the `chunk` value `src[start, end)` at `out[pos]` (room
 * for `ackLength(end - start)` bytes); returns where it ends. Byte by byte:
 * an id is a few dozen bytes, for which `Buffer#copy`'s call costs more than the copy.
 */
export function writeAck(out: Uint8Array, pos: number, src: Uint8Array, start: number, end: number): number {
  out[pos] = 0x81;
  out[pos + 1] = 0xa3;
  out[pos + 2] = 0x61;
  out[pos + 3] = 0x63;
  out[pos + 4] = 0x6b;
  let p = pos + ACK_PREFIX.length;
  for (let i = start; i < end; i++) out[p++] = src[i];
  return p;
}

/** The JSON answer for a client that spoke JSON (Fluentd answers in the client's format). */
export function encodeJsonAck(chunkId: string): Buffer {
  return Buffer.from(JSON.stringify({ ack: chunkId }));
}
