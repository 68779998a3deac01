/**
 * Sizing zlib's output for inflating a gzip buffer in one piece. Node's
 * gunzip writes into `chunkSize` pieces (16 KiB by default) and concatenates
 * them: for a 200 KB chunk that is 13 passes (each a round trip to the
 * threadpool when async) and a copy. Sized from the gzip trailer, it is one.
 */

/** gzip's magic bytes (RFC 1952, 2.3.1): the first two of every member. */
const GZIP_MAGIC = [0x1f, 0x8b] as const;
/** Node's default and least useful output piece (zlib.constants.Z_DEFAULT_CHUNK). */
const DEFAULT_CHUNK = 16 * 1024;
/** A trailer is only a hint: a corrupt one never makes a piece larger than this (bigger outputs take several). */
const MAX_CHUNK = 16 * 1024 * 1024;

/** True when `buf` starts like a gzip member. */
export function looksGzipped(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === GZIP_MAGIC[0] && buf[1] === GZIP_MAGIC[1];
}

/**
 * The `chunkSize` to inflate `gz` with: its last member's ISIZE (the trailer's
 * last 4 bytes, the inflated size mod 2^32), within [16 KiB, 16 MiB]. Exact
 * for one member; for several (a sender may concatenate), zlib just takes more
 * pieces.
 */
export function gunzipChunkSize(gz: Buffer): number {
  return Math.min(MAX_CHUNK, Math.max(DEFAULT_CHUNK, gzipInflatedSize(gz)));
}

/** The last member's ISIZE (the inflated size mod 2^32); 0 for bytes too short to hold a gzip member. */
export function gzipInflatedSize(gz: Buffer): number {
  return gz.length < 18 ? 0 : gz.readUInt32LE(gz.length - 4);
}
