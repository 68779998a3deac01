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
  return Buffer.concat([ACK_PREFIX, chunkValue], ACK_PREFIX.length + chunkValue.length);
}

/** The JSON answer for a client that spoke JSON (Fluentd answers in the client's format). */
export function encodeJsonAck(chunkId: string): Buffer {
  return Buffer.from(JSON.stringify({ ack: chunkId }));
}
