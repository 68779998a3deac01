/**
 * The value of a Kafka log message: a chunk's entries, gzipped on their own
 * or plain, with the `codec` header saying which.
 *
 *   value   = gzip(entries)   when header codec = "gzip"
 *           | entries         when there is no codec header (plain msgpack)
 *
 * Each value is compressed by itself, on libuv's threadpool (zlib's async
 * gzip), and sent in produce requests that kafkajs does not compress: kafkajs
 * compresses a whole request on the main thread, one request at a time per
 * producer, which bounded the append rate and took the main thread's turns
 * from ingest and egress. A chunk that arrived gzipped (CompressedPackedForward)
 * keeps the sender's bytes and is not compressed again.
 *
 * Values without the header are read as plain entries: topics written before
 * values were compressed (kafkajs's per-request gzip, inflated by kafkajs on
 * fetch) and with `compression: none` read as before, mixed or not.
 */
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { gunzipChunkSize, looksGzipped } from '@tributary/core';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** The message header naming the value's codec. */
export const CODEC_HEADER = 'codec';
export const GZIP = 'gzip';

/** The value to store for `entries`: `gzipped` when the caller has them (the sender's own gzip of the same entries), else gzip at `level` off the main thread. */
export function gzipValue(entries: Buffer, level: number, gzipped?: Buffer): Promise<Buffer> {
  if (gzipped) return Promise.resolve(gzipped);
  return gzipAsync(entries, { level });
}

/**
 * The entries a stored value holds, in memory of their own (never a slice of
 * the fetch buffer the value came in, so a queued record does not keep a
 * whole fetch response alive). Inflates off the main thread. Rejects when the
 * codec is unknown or the value does not inflate.
 */
export async function readValue(value: Buffer | null, codec: string | undefined, maxBytes: number): Promise<Buffer> {
  if (value === null || value.length === 0) return Buffer.alloc(0);
  if (codec === undefined) return Buffer.from(value);
  if (codec !== GZIP) throw new Error(`its codec header is "${codec.slice(0, 40)}" (this version reads gzip or none)`);
  if (!looksGzipped(value)) throw new Error('its value is not gzip (no gzip magic bytes)');
  try {
    // sized from the gzip trailer: one pass on the threadpool instead of one per 16 KiB
    return await gunzipAsync(value, { maxOutputLength: maxBytes, chunkSize: gunzipChunkSize(value) });
  } catch (err) {
    throw new Error(`its gzip value does not inflate (${(err as Error).message})`);
  }
}
