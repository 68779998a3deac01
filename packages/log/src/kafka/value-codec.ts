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
 * keeps the sender's bytes and is not compressed again. The reader hands a
 * gzip value on as it is (StoredRecord.gzipped): egress inflates it on its
 * encoder threads, so the main thread never holds the inflated entries.
 *
 * Values without the header are read as plain entries: topics written before
 * values were compressed (kafkajs's per-request gzip, inflated by kafkajs on
 * fetch) and with `compression: none` read as before, mixed or not.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { gzipInflatedSize, looksGzipped } from '@tributary/core';

const gzipAsync = promisify(gzip);

/** The message header naming the value's codec. */
export const CODEC_HEADER = 'codec';
export const GZIP = 'gzip';

/**
 * The value to store for `entries`: `gzipped` when the caller has them (the
 * sender's own gzip of the same entries) as one gzip member, else gzip at
 * `level` off the main thread. The log sizes a stored value from its gzip
 * trailer (`gzipInflatedSize`), which gives only the last member's size: a
 * sender's several members (Fluentd's compress gzip, one per buffer append)
 * are compressed again, so the reader's and egress's byte bounds hold.
 */
export function gzipValue(entries: Buffer, level: number, gzipped?: Buffer): Promise<Buffer> {
  if (gzipped && gzipInflatedSize(gzipped) === entries.length) return Promise.resolve(gzipped);
  return gzipAsync(entries, { level });
}

/**
 * What a stored value holds, in memory of its own (never a slice of the
 * fetch buffer the value came in, so a queued record does not keep a whole
 * fetch response alive): plain entries, or the gzip bytes that inflate to
 * them. Throws when the codec is unknown or a gzip value does not start like
 * gzip; a gzip value that does not inflate is found where it is inflated.
 */
export function readValue(value: Buffer | null, codec: string | undefined): { entries: Buffer; gzipped?: Buffer } {
  if (value === null || value.length === 0) return { entries: EMPTY };
  if (codec === undefined) return { entries: Buffer.from(value) };
  if (codec !== GZIP) throw new Error(`its codec header is "${codec.slice(0, 40)}" (this version reads gzip or none)`);
  if (!looksGzipped(value)) throw new Error('its value is not gzip (no gzip magic bytes)');
  return { entries: EMPTY, gzipped: Buffer.from(value) };
}

const EMPTY = Buffer.alloc(0);
