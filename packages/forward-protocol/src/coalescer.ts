/**
 * The MessagePack requests of one read, as chunks, with runs of plain
 * Message-mode requests merged:
 *
 *   read   = request*                          (the complete frames of one socket read)
 *   run    = plain+ of one tag, back to back   → one chunk { tag, entries: entry+, count, mode: 'message' }
 *   plain  = [ tag, time, record ]             (3 elements: no option, time not 0; see `isPlainMessage`)
 *   other  = any other request                 → its own chunk (`parseRequest`); it ends the run
 *
 * A run's entries are moved together in place, over the request headers
 * between them, so its chunk is one view of the read: no object, view or
 * copy per message. A request with an option is never merged: it keeps its
 * own chunk, so its `chunk` id is acked for exactly its own event, and a
 * run has no ack of its own. Runs never span reads: each read's chunks are
 * one batch, handed to `consume` together.
 *
 * With `mergeAcked` (the forwarder, whose buffer checks every id of a run),
 * fluent-logger's acked messages `[tag, time, record, {chunk: id}]` of one
 * tag, back to back, are merged the same way into one chunk that carries
 * their ids (`ForwardChunk.ids`: entry sizes, and the acks encoded in order,
 * which hold the ids, made text only when asked for);
 * a run of one stays a chunk of its own with its `chunkId` and `ack`.
 *
 * Every request is admitted (tag, times, record depth, event size) before it
 * joins a run. The first refusal stops the read: the chunks before it are
 * returned along with the error, and nothing after it is looked at.
 */
import { AckedIds, ackLength, writeAck } from './ack';
import { type AdmissionLimits, admitEntries, admitShallowEntry, asAdmissionError, checkChunkIdValue } from './admission';
import type { FrameDecoder } from './decoder';
import { newEntryHead } from './entries';
import { EVENT_TIME_EXT } from './event-time';
import {
  type ForwardChunk,
  type MessageParts,
  type RequestLimits,
  TagCache,
  chunkIdText,
  chunkOnlyOptionValue,
  isAckedMessage,
  isPlainMessage,
  parseRequest,
} from './request';

/**
 * One per connection. It remembers only the last tag the connection sent
 * (its `TagCache`, shared with `parseRequest`: senders repeat a tag, which is
 * then neither decoded nor checked again) and the recogniser's
 * out-parameters; `coalesce` keeps nothing of a read once it returns.
 */
export class MessageCoalescer {
  private readonly parts: MessageParts = { tagStart: 0, tagEnd: 0, entryStart: 0, recordEnd: 0, ackStart: 0, head: newEntryHead() };
  private readonly requestLimits: RequestLimits;
  private readonly tags = new TagCache();
  /** Where the acks of merged runs are encoded: a slab, cut into one view per run, replaced when full. */
  private ackSlab = Buffer.allocUnsafe(0);
  private ackPos = 0;

  constructor(
    private readonly admission: AdmissionLimits,
    maxDecompressedBytes: number,
    private readonly mergeAcked = false,
  ) {
    this.requestLimits = { maxDecompressedBytes, reuseFrame: true, admission, tags: this.tags };
  }

  /**
   * Appends to `out` the chunks of the frames `buf[ranges[i], ranges[i + 1])`
   * for even `i` from `from` on (a `FrameDecoder.pushRanges` result), with
   * what the framer's scan learnt of each (`scans`: the decoder that framed them).
   * The caller hands those bytes over: they are rewritten in place, and the
   * chunks are views of `buf` (inflated entries excepted). Returns the
   * refusal that stopped the read, or null when every frame became a chunk.
   */
  coalesce(buf: Buffer, ranges: readonly number[], from: number, scans: FrameScans, out: ForwardChunk[]): Error | null {
    const { admission, parts } = this;
    const { frameContainers, frameThirdEnds } = scans;
    let runTag = '';
    let runCount = 0;
    let runBegin = 0;
    let runEnd = 0;
    // A run of acked messages: its sizes, where its acks (holding its ids) start in the slab, its first message's ack in `buf`.
    let acked: AckedRunParts | null = null;
    let failure: Error | null = null;
    const flush = () => {
      if (runCount > 0)
        out.push(acked ? this.ackedRun(buf, runTag, runBegin, runEnd, acked) : messageRun(buf, runTag, runBegin, runEnd, runCount));
      runCount = 0;
      acked = null;
    };
    for (let i = from; i < ranges.length; i += 2) {
      const start = ranges[i];
      const end = ranges[i + 1];
      try {
        let entryEnd = end;
        let isAcked = false;
        const head = buf[start];
        let tag = head === 0x93 || head === 0x94 ? this.tags.admittedAt(buf, start + 1, admission) : null;
        // the entry starts at the tag's last byte: a fixstr tag of the fast path is 1 + length bytes from start + 1
        const fastEntry = tag === null ? -1 : start + 1 + this.tags.byteLength;
        if (tag !== null && head === 0x93 && isShallowPlainEntry(buf, fastEntry, end, admission, frameContainers[i >> 1])) {
          buf[fastEntry] = 0x92;
          parts.entryStart = fastEntry;
        } else if (
          tag !== null &&
          head === 0x94 &&
          isShallowAckedMessage(buf, fastEntry, end, frameThirdEnds[i >> 1], admission, frameContainers[i >> 1], parts)
        ) {
          buf[fastEntry] = 0x92;
          parts.entryStart = fastEntry;
          isAcked = true;
          entryEnd = parts.recordEnd;
        } else if (!isPlainMessage(buf, start, end, parts)) {
          if (!isAckedMessage(buf, start, end, parts, frameThirdEnds[i >> 1])) {
            flush();
            out.push(parseRequest(buf.subarray(start, end), this.requestLimits));
            continue;
          }
          checkChunkIdValue(buf, parts.ackStart, end, admission); // its text is made only when a chunk needs it
          isAcked = true;
          entryEnd = parts.recordEnd;
          tag = this.admitMessage(buf, frameContainers[i >> 1] - 2, entryEnd);
        } else {
          tag = this.admitMessage(buf, frameContainers[i >> 1] - 1, entryEnd);
        }
        const entryStart = parts.entryStart;
        if (isAcked && !this.mergeAcked) {
          // Its own chunk, what `parseRequest` returns for it, without its general option reader or a second walk over the record.
          flush();
          out.push(ackedMessage(buf, tag, entryStart, entryEnd, parts.ackStart, end));
          continue;
        }
        if (runCount > 0 && (tag !== runTag || (acked !== null) !== isAcked)) flush();
        if (runCount === 0) {
          runTag = tag;
          runBegin = entryStart;
          runEnd = entryStart;
        }
        if (isAcked) {
          if (acked === null) {
            acked = { sizes: [entryEnd - entryStart], ackFrom: -1, firstAck: parts.ackStart, firstEnd: end };
          } else {
            // Copied out before the entry moves: the next entries are moved over the acks of the earlier ones.
            if (acked.ackFrom < 0) acked.ackFrom = this.putAck(buf, acked.firstAck, acked.firstEnd, -1);
            acked.ackFrom = this.putAck(buf, parts.ackStart, end, acked.ackFrom);
            acked.sizes.push(entryEnd - entryStart);
          }
        }
        if (runEnd !== entryStart) buf.copyWithin(runEnd, entryStart, entryEnd); // overlap-safe; cheaper than Buffer#copy per message
        runEnd += entryEnd - entryStart;
        runCount++;
      } catch (err) {
        failure = asAdmissionError(err) as Error;
        break;
      }
    }
    flush();
    return failure;
  }

  /**
   * Encodes the ack of the `chunk` value `buf[start, end)` at the end of the
   * slab, for the run whose acks start at `runFrom` (-1: a new run); returns
   * where that run's acks now start (a full slab is replaced, the run's acks so far copied over).
   */
  private putAck(buf: Buffer, start: number, end: number, runFrom: number): number {
    const need = ackLength(end - start);
    let from = runFrom < 0 ? this.ackPos : runFrom;
    if (this.ackPos + need > this.ackSlab.length) {
      const kept = this.ackPos - from;
      const slab = Buffer.allocUnsafe(Math.max(ACK_SLAB_BYTES, 2 * (kept + need)));
      this.ackSlab.copy(slab, 0, from, this.ackPos);
      this.ackSlab = slab;
      this.ackPos = kept;
      from = 0;
    }
    this.ackPos = writeAck(this.ackSlab, this.ackPos, buf, start, end);
    return from;
  }

  /** A run of acked messages as one chunk; a run of one as its own chunk, with its `chunkId` and `ack`. */
  private ackedRun(buf: Buffer, tag: string, begin: number, end: number, run: AckedRunParts): ForwardChunk {
    if (run.sizes.length === 1) return ackedMessage(buf, tag, begin, end, run.firstAck, run.firstEnd);
    const acks = this.ackSlab.subarray(run.ackFrom, this.ackPos);
    return { tag, entries: buf.subarray(begin, end), count: run.sizes.length, mode: 'message', ids: new AckedIds(run.sizes, acks) };
  }

  /**
   * The tag of the message `isPlainMessage` or `isAckedMessage` filled
   * `parts` for, admitted, and its entry `buf[parts.entryStart, entryEnd)`
   * made in place and admitted; `recordContainers`, the frame's containers
   * but the outer array (and the option map), bound the record's depth: when
   * that many cannot break the depth rule, the framer's scan stands for the
   * walk over the record. Throws the refusal.
   */
  private admitMessage(buf: Buffer, recordContainers: number, entryEnd: number): string {
    const { admission, parts } = this;
    const tag = this.admittedTag(buf, parts.tagStart, parts.tagEnd);
    const entryStart = parts.entryStart;
    buf[entryStart] = 0x92; // the tag's last byte becomes the entry's array header
    if (recordContainers <= admission.maxRecordDepth) admitShallowEntry(buf, admission, entryStart, entryEnd, parts.head);
    else admitEntries(buf, admission, entryStart, entryEnd);
    return tag;
  }

  /** The tag in `buf[start, end)`, admitted (throws TRB_FWD_BAD_TAG otherwise); read before the bytes are rewritten. */
  private admittedTag(buf: Buffer, start: number, end: number): string {
    const tag = this.tags.decode(buf, start, end);
    this.tags.admit(tag, this.admission);
    return tag;
  }
}

/** What the framer's scan learnt of each frame of a read, in frame order (`FrameDecoder`'s fields of that name). */
export type FrameScans = Pick<FrameDecoder, 'frameContainers' | 'frameThirdEnds'>;

/** A run of acked messages being built: its entries' sizes, where its acks start in the slab (-1: not copied out yet), its first ack in the read. */
interface AckedRunParts {
  sizes: number[];
  ackFrom: number;
  firstAck: number;
  firstEnd: number;
}

/**
 * The fast path's entry: the complete frame ends at `end` and, from the tag's
 * last byte at `pos` on, holds a time, either a fixext8 EventTime with
 * nanoseconds below 1e9 (Fluent Bit, fluent-logger with EventTime) or a
 * non-zero uint32 of seconds (fluent-logger's default, `Date.now() / 1000`
 * as msgpack-lite writes it), then a fixmap record, in a frame of
 * `containers` maps and arrays (the outer array, then at most
 * `maxRecordDepth` in the record), no larger than `maxEventBytes`: every rule
 * `admitShallowEntry` checks holds (the seconds of either time are in range
 * by their width). False sends the frame down the general path, which reads
 * it whole and refuses what breaks a rule.
 */
function isShallowPlainEntry(buf: Buffer, pos: number, end: number, admission: AdmissionLimits, containers: number): boolean {
  let record: number;
  if (buf[pos + 1] === 0xd7 && buf[pos + 2] === EVENT_TIME_EXT && pos + 12 <= end) {
    const nanoseconds = buf[pos + 7] * 0x1000000 + ((buf[pos + 8] << 16) | (buf[pos + 9] << 8) | buf[pos + 10]);
    if (nanoseconds >= 1e9) return false;
    record = pos + 11;
  } else if (buf[pos + 1] === 0xce && pos + 7 <= end && (buf[pos + 2] | buf[pos + 3] | buf[pos + 4] | buf[pos + 5]) !== 0) {
    record = pos + 6;
  } else return false;
  if ((buf[record] & 0xf0) !== 0x80 || containers - 1 > admission.maxRecordDepth) return false;
  return admission.maxEventBytes === undefined || end - pos <= admission.maxEventBytes;
}

/**
 * The fast path's acked message (fluent-logger's `[tag, time, record,
 * {"chunk": id}]`): `isShallowPlainEntry`'s entry from the tag's last byte at
 * `pos` to `recordEnd` (where the framer found the record to end; -1: not
 * known), then an option map holding only `chunk`, and a fixstr id that ends
 * the frame, short enough for `maxChunkIdBytes` whatever its bytes. Every rule
 * `isAckedMessage`, `checkChunkIdValue` and `admitShallowEntry` check then
 * holds; fills `parts.recordEnd` and `parts.ackStart`. `containers` counts the
 * option map too. False sends the frame down the general path.
 */
function isShallowAckedMessage(
  buf: Buffer,
  pos: number,
  end: number,
  recordEnd: number,
  admission: AdmissionLimits,
  containers: number,
  parts: MessageParts,
): boolean {
  const ackStart = chunkOnlyOptionValue(buf, recordEnd, end);
  if (ackStart < 0) return false;
  const id = buf[ackStart];
  const idBytes = id & 0x1f;
  if ((id & 0xe0) !== 0xa0 || ackStart + 1 + idBytes !== end || idBytes * 3 > admission.maxChunkIdBytes) return false;
  if (!isShallowPlainEntry(buf, pos, recordEnd, admission, containers - 1)) return false;
  parts.recordEnd = recordEnd;
  parts.ackStart = ackStart;
  return true;
}

/** The ack slab's size: the acks of about 1,500 messages with 16-byte ids; the slab a run's view keeps alive. */
const ACK_SLAB_BYTES = 64 * 1024;

/** One acked message as its own chunk (what `parseRequest` returns for it): entries `buf[begin, end)`, its `chunk` value `buf[ackStart, ackEnd)`. */
function ackedMessage(buf: Buffer, tag: string, begin: number, end: number, ackStart: number, ackEnd: number): ForwardChunk {
  const ack = buf.subarray(ackStart, ackEnd);
  return { tag, entries: buf.subarray(begin, end), count: 1, mode: 'message', ack, chunkId: chunkIdText(buf, ackStart, ackEnd) };
}

function messageRun(buf: Buffer, tag: string, begin: number, end: number, count: number): ForwardChunk {
  return { tag, entries: buf.subarray(begin, end), count, mode: 'message' };
}
