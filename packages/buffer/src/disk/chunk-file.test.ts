import { crc32 } from 'node:zlib';
import { EventTime, type ForwardChunk, decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { JoinScratch, MAX_SEND_PARTS, chunkFileName, chunkIdOfFileName, encodeAppend, parseChunkFile, sendParts } from './chunk-file';

const t = new EventTime(1700000000, 0);
const part = (from: number, n: number): ForwardChunk => ({
  tag: 'app',
  entries: Buffer.concat(Array.from({ length: n }, (_, i) => encodeEntry(t, { i: from + i }))),
  count: n,
  mode: 'packed',
});
const header = { tag: 'app', createdAt: 1_700_000_000_123 };

/** A file as the disk storage writes it: one append per element of `appends`, the first with the header. */
function file(appends: ForwardChunk[][]): Buffer {
  return Buffer.concat(appends.flatMap((parts, i) => encodeAppend(header, parts, i === 0).buffers));
}

const events = (parts: Buffer[]): number[] => decodeEntries(Buffer.concat(parts)).map((e) => e.record.i as number);

test('appends read back as written: header, events in order, every byte accounted for', () => {
  const first = encodeAppend(header, [part(0, 3)], true);
  const second = encodeAppend(header, [part(3, 2), part(5, 4)], false);
  expect(first.bytes).toBe(Buffer.concat(first.buffers).length);
  const data = Buffer.concat([...first.buffers, ...second.buffers]);
  const parsed = parseChunkFile(data, true);
  expect(parsed).toMatchObject({ tag: 'app', createdAt: header.createdAt, events: 9, goodLength: data.length });
  expect(parsed?.problem).toBeUndefined();
  expect(parsed?.entries).toHaveLength(2); // one record per append
  expect(events(parsed?.entries ?? [])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  // The cache is handed the records' payloads: the same bytes the file holds.
  expect(Buffer.concat([...first.payloads, ...second.payloads]).equals(Buffer.concat(parsed?.entries ?? []))).toBe(true);
});

test('many small parts of one append are joined into one record', () => {
  const parts = Array.from({ length: 40 }, (_, i) => part(i, 1));
  const append = encodeAppend(header, parts, false);
  expect(append.payloads).toHaveLength(1);
  expect(append.buffers).toHaveLength(2); // record header + the joined payload
  const parsed = parseChunkFile(file([[part(100, 1)], parts]), true);
  expect(events(parsed?.entries ?? [])).toEqual([100, ...Array.from({ length: 40 }, (_, i) => i)]);
});

test('JoinScratch: joins go into one buffer reused from write to write; a join over its size gets a buffer of its own', () => {
  const scratch = new JoinScratch(1024);
  const parts = Array.from({ length: 40 }, (_, i) => part(i, 1));
  const first = encodeAppend(header, parts, false, scratch.join);
  const firstBytes = Buffer.from(first.payloads[0]);
  const second = encodeAppend(header, parts.slice(0, 20), false, scratch.join);
  expect(second.payloads[0].buffer).toBe(first.payloads[0].buffer); // the same memory: no allocation per write
  expect(events([second.payloads[0]])).toEqual(Array.from({ length: 20 }, (_, i) => i));
  expect(events([firstBytes])).toEqual(Array.from({ length: 40 }, (_, i) => i));
  const many = Array.from({ length: 200 }, (_, i) => part(i, 1));
  const big = encodeAppend(header, many, false, scratch.join);
  expect(big.payloads[0].length).toBeGreaterThan(1024);
  expect(big.payloads[0].buffer).not.toBe(first.payloads[0].buffer);
  expect(events(big.payloads)).toEqual(Array.from({ length: 200 }, (_, i) => i));
});

test('a torn tail: parsing stops at the last complete record and says where', () => {
  const whole = file([[part(0, 2)], [part(2, 2)], [part(4, 2)]]);
  const lastRecordStart = file([[part(0, 2)], [part(2, 2)]]).length;
  for (const cut of [lastRecordStart + 3, lastRecordStart + 8, whole.length - 1]) {
    const parsed = parseChunkFile(whole.subarray(0, cut), true);
    expect(parsed?.goodLength).toBe(lastRecordStart);
    expect(events(parsed?.entries ?? [])).toEqual([0, 1, 2, 3]);
    expect(parsed?.problem).toMatch(cut < lastRecordStart + 8 ? /torn record header at byte \d+/ : /torn record at byte \d+/);
  }
});

test('a flipped byte fails the checksum when verifying; the records before it are kept', () => {
  const data = file([[part(0, 2)], [part(2, 2)]]);
  data[data.length - 2] ^= 0xff;
  const parsed = parseChunkFile(data, true);
  expect(parsed?.problem).toMatch(/checksum mismatch/);
  expect(events(parsed?.entries ?? [])).toEqual([0, 1]);
  // Without verifying (data verified when accepted), the record is taken as it is.
  expect(parseChunkFile(data, false)?.entries).toHaveLength(2);
});

test('entries that are not the forward protocol stop recovery at their record', () => {
  const bad = encodeAppend(header, [{ ...part(0, 1), entries: Buffer.from([0xc1, 0xc1, 0xc1]) }], false);
  const data = Buffer.concat([file([[part(0, 2)]]), ...bad.buffers]);
  const parsed = parseChunkFile(data, true);
  expect(parsed?.problem).toMatch(/invalid entries/);
  expect(parsed?.events).toBe(2);
});

test('an unreadable header makes the whole file unreadable', () => {
  const data = file([[part(0, 1)]]);
  expect(parseChunkFile(data.subarray(0, 5), true)).toBeNull(); // not even the header's record
  expect(parseChunkFile(Buffer.from('garbage'), true)).toBeNull();
});

test('sendParts: a few records go out as they are; many are joined in place over their headers', () => {
  const few = file(Array.from({ length: MAX_SEND_PARTS }, (_, i) => [part(i * 2, 2)]));
  const fewParsed = parseChunkFile(few, false);
  expect(sendParts(few, fewParsed?.entries ?? [])).toBe(fewParsed?.entries);
  const many = file(Array.from({ length: 30 }, (_, i) => [part(i * 2, 2)]));
  const parsed = parseChunkFile(many, false);
  const out = sendParts(many, parsed?.entries ?? []);
  expect(out).toHaveLength(1);
  expect(out[0].buffer).toBe(many.buffer); // no second allocation
  expect(events(out)).toEqual(Array.from({ length: 60 }, (_, i) => i));
});

test('file names carry the chunk id and give it back', () => {
  const id = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  expect(chunkFileName(id)).toBe('00112233445566778899aabbccddeeff.chunk');
  expect(chunkIdOfFileName(chunkFileName(id))?.equals(id)).toBe(true);
  expect(chunkIdOfFileName('acked-chunk-ids.journal')).toBeNull();
});

/** A record framed by hand: length word (with the id record bit when `ids`), crc32, payload. */
function rawRecord(payload: Buffer, ids: boolean): Buffer[] {
  const h = Buffer.alloc(8);
  h.writeUInt32BE((payload.length | (ids ? 0x80000000 : 0)) >>> 0, 0);
  h.writeUInt32BE(crc32(payload) >>> 0, 4);
  return [h, payload];
}

describe('client chunk ids beside the entries (id records)', () => {
  const ids = (n: number, at: number) => ({ hashes: Uint32Array.from({ length: 4 * n }, (_, i) => (i * 2654435761) >>> 0), n, at });

  test('an append with ids reads back the same entries, and recovery (verify) reads the ids with their time', () => {
    const withIds = file([[part(0, 3)]]);
    const second = encodeAppend(header, [part(3, 2)], false, undefined, ids(3, 1_700_000_000_500));
    const third = encodeAppend(header, [part(5, 1)], false, undefined, ids(1, 1_700_000_000_600));
    const data = Buffer.concat([withIds, ...second.buffers, ...third.buffers]);
    expect(second.bytes).toBe(Buffer.concat(second.buffers).length);
    const verified = parseChunkFile(data, true);
    expect(verified).toMatchObject({ events: 6, goodLength: data.length });
    expect(verified?.problem).toBeUndefined();
    expect(events(verified?.entries ?? [])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(verified?.ids).toEqual([ids(3, 1_700_000_000_500), ids(1, 1_700_000_000_600)]);
    // A send's read only splits records: the id records are stepped over, not read.
    const read = parseChunkFile(data, false);
    expect(events(read?.entries ?? [])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(read?.ids).toEqual([]);
  });

  test('ids after a torn or corrupt entries record are never read: an id is kept only with its events', () => {
    const first = file([[part(0, 2)]]);
    const append = Buffer.concat(encodeAppend(header, [part(2, 2)], false, undefined, ids(2, 5)).buffers);
    const corrupt = Buffer.from(append);
    corrupt[12] ^= 0xff; // inside the entries record's payload
    const parsed = parseChunkFile(Buffer.concat([first, corrupt]), true);
    expect(parsed?.problem).toMatch(/checksum mismatch/);
    expect(parsed?.ids).toEqual([]);
    expect(parsed?.goodLength).toBe(first.length);
    // torn inside the id record itself: the entries before it stand, the ids do not
    const torn = parseChunkFile(Buffer.concat([first, append.subarray(0, append.length - 3)]), true);
    expect(torn?.events).toBe(4);
    expect(torn?.ids).toEqual([]);
    expect(torn?.problem).toMatch(/torn record/);
  });

  test('an id record of a length that holds no whole hashes ends the file there', () => {
    const first = file([[part(0, 2)]]);
    const parsed = parseChunkFile(Buffer.concat([first, ...rawRecord(Buffer.alloc(8 + 15), true)]), true);
    expect(parsed?.events).toBe(2);
    expect(parsed?.goodLength).toBe(first.length);
    expect(parsed?.problem).toBe(`the id record at byte ${first.length} holds 23 bytes, not a time and whole hashes`);
  });

  test('eight zero bytes in place of an entries record (a page lost to a power loss) stop recovery before the id record after them', () => {
    const first = file([[part(0, 2)]]);
    const append = encodeAppend(header, [part(2, 2)], false, undefined, ids(1, 5));
    const [entriesHeader, entries, ...idRecord] = append.buffers;
    expect(entriesHeader.length + entries.length).toBeGreaterThan(8);
    const zeroed = Buffer.alloc(8); // as if the entries record's pages read back as zeros, one empty record long
    const parsed = parseChunkFile(Buffer.concat([first, zeroed, ...idRecord]), true);
    expect(parsed?.problem).toBe(`empty entries record at byte ${first.length}`);
    expect(parsed?.ids).toEqual([]);
    expect(parsed?.events).toBe(2);
  });

  test('in a version 1 file a length word with the high bit set is a corrupt record, as it always was, not an id record', () => {
    const v1 = Buffer.concat([
      ...rawRecord(Buffer.from(JSON.stringify({ v: 1, tag: 'app', createdAt: 7 })), false),
      ...rawRecord(part(0, 1).entries, false),
    ]);
    const idLike = Buffer.concat(rawRecord(Buffer.concat([Buffer.alloc(8), Buffer.alloc(16, 1)]), true));
    const parsed = parseChunkFile(Buffer.concat([v1, idLike]), true);
    expect(parsed?.ids).toEqual([]);
    expect(parsed?.goodLength).toBe(v1.length);
    expect(parsed?.problem).toMatch(/^torn record at byte/);
  });

  test('a version 1 file (no id records) reads as before', () => {
    const v1Header = Buffer.from(JSON.stringify({ v: 1, tag: 'app', createdAt: 7 }));
    const data = Buffer.concat([...rawRecord(v1Header, false), ...rawRecord(part(0, 3).entries, false)]);
    expect(parseChunkFile(data, true)).toMatchObject({ tag: 'app', createdAt: 7, events: 3, ids: [], goodLength: data.length });
  });
});
