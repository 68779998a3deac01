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
 * tag, back to back, are merged the same way into one chunk that lists their
 * ids (`ForwardChunk.ids`: ids, entry sizes, and the acks encoded in order);
 * a run of one stays a chunk of its own with its `chunkId` and `ack`.
 *
 * Every request is admitted (tag, times, record depth, event size) before it
 * joins a run. The first refusal stops the read: the chunks before it are
 * returned along with the error, and nothing after it is looked at.
 */
import { ACK_PREFIX } from './ack';
import { type AdmissionLimits, admitEntries, admitShallowEntry, asAdmissionError, checkChunkId } from './admission';
import { newEntryHead } from './entries';
import {
  type ForwardChunk,
  type MessageParts,
  type RequestLimits,
  TagCache,
  chunkIdText,
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
   * for even `i` from `from` on (a `FrameDecoder.pushRanges` result), whose
   * maps and arrays `frameContainers[i >> 1]` counts (`FrameDecoder.frameContainers`).
   * The caller hands those bytes over: they are rewritten in place, and the
   * chunks are views of `buf` (inflated entries excepted). Returns the
   * refusal that stopped the read, or null when every frame became a chunk.
   */
  coalesce(buf: Buffer, ranges: readonly number[], from: number, frameContainers: readonly number[], out: ForwardChunk[]): Error | null {
    const { admission, parts } = this;
    let runTag = '';
    let runCount = 0;
    let runBegin = 0;
    let runEnd = 0;
    // A run of acked messages: its ids and sizes, where its acks start in the slab, its first message's ack in `buf`.
    let acked: { chunkIds: string[]; sizes: number[]; ackFrom: number; firstAck: number; firstEnd: number } | null = null;
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
        let chunkId: string | null = null;
        if (!isPlainMessage(buf, start, end, parts)) {
          if (!this.mergeAcked || !isAckedMessage(buf, start, end, parts)) {
            flush();
            out.push(
              isAckedMessage(buf, start, end, parts)
                ? this.ackedMessage(buf, end, frameContainers[i >> 1])
                : parseRequest(buf.subarray(start, end), this.requestLimits),
            );
            continue;
          }
          chunkId = chunkIdText(buf, parts.ackStart, end);
          checkChunkId(chunkId, admission);
          entryEnd = parts.recordEnd;
        }
        const tag = this.admittedTag(buf, parts.tagStart, parts.tagEnd);
        const entryStart = parts.entryStart;
        buf[entryStart] = 0x92; // the tag's last byte becomes the entry's array header
        // [tag, time, record]: the record holds at most the frame's containers but the outer array (and the option
        // map); when that many cannot break the depth rule, the framer's scan stands for the walk over the record.
        const outer = chunkId === null ? 1 : 2;
        if (frameContainers[i >> 1] - outer <= admission.maxRecordDepth)
          admitShallowEntry(buf, admission, entryStart, entryEnd, parts.head);
        else admitEntries(buf, admission, entryStart, entryEnd);
        if (runCount > 0 && (tag !== runTag || (acked === null) !== (chunkId === null))) flush();
        if (runCount === 0) {
          runTag = tag;
          runBegin = entryStart;
          runEnd = entryStart;
        }
        if (chunkId !== null) {
          if (acked === null) {
            acked = { chunkIds: [chunkId], sizes: [entryEnd - entryStart], ackFrom: -1, firstAck: parts.ackStart, firstEnd: end };
          } else {
            // Copied out before the entry moves: the next entries are moved over the acks of the earlier ones.
            if (acked.ackFrom < 0) acked.ackFrom = this.putAck(buf, acked.firstAck, acked.firstEnd, -1);
            acked.ackFrom = this.putAck(buf, parts.ackStart, end, acked.ackFrom);
            acked.chunkIds.push(chunkId);
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
    const need = ACK_PREFIX.length + end - start;
    let from = runFrom < 0 ? this.ackPos : runFrom;
    if (this.ackPos + need > this.ackSlab.length) {
      const kept = this.ackPos - from;
      const slab = Buffer.allocUnsafe(Math.max(ACK_SLAB_BYTES, 2 * (kept + need)));
      this.ackSlab.copy(slab, 0, from, this.ackPos);
      this.ackSlab = slab;
      this.ackPos = kept;
      from = 0;
    }
    this.ackSlab.set(ACK_PREFIX, this.ackPos);
    buf.copy(this.ackSlab, this.ackPos + ACK_PREFIX.length, start, end);
    this.ackPos += need;
    return from;
  }

  /** A run of acked messages as one chunk; a run of one as the chunk `ackedMessage` makes. */
  private ackedRun(
    buf: Buffer,
    tag: string,
    begin: number,
    end: number,
    run: { chunkIds: string[]; sizes: number[]; ackFrom: number; firstAck: number; firstEnd: number },
  ): ForwardChunk {
    const entries = buf.subarray(begin, end);
    if (run.chunkIds.length === 1) {
      return { tag, entries, count: 1, mode: 'message', ack: buf.subarray(run.firstAck, run.firstEnd), chunkId: run.chunkIds[0] };
    }
    const acks = this.ackSlab.subarray(run.ackFrom, this.ackPos);
    return { tag, entries, count: run.chunkIds.length, mode: 'message', ids: { chunkIds: run.chunkIds, sizes: run.sizes, acks } };
  }

  /**
   * fluent-logger's `[tag, time, record, {"chunk": id}]` (`isAckedMessage`
   * filled `parts`) as its own chunk, admitted, its entry made in place: what
   * `parseRequest` returns for it, without its general option reader or a
   * second walk over the record. `containers` as in `coalesce`.
   */
  private ackedMessage(buf: Buffer, end: number, containers: number): ForwardChunk {
    const { admission, parts } = this;
    const tag = this.admittedTag(buf, parts.tagStart, parts.tagEnd);
    const chunkId = chunkIdText(buf, parts.ackStart, end);
    checkChunkId(chunkId, admission);
    const entryStart = parts.entryStart;
    buf[entryStart] = 0x92; // the tag's last byte becomes the entry's array header
    // The frame's containers less the outer array and the option map bound the record's depth, as for a plain message.
    if (containers - 2 <= admission.maxRecordDepth) admitShallowEntry(buf, admission, entryStart, parts.recordEnd, parts.head);
    else admitEntries(buf, admission, entryStart, parts.recordEnd);
    return {
      tag,
      entries: buf.subarray(entryStart, parts.recordEnd),
      count: 1,
      mode: 'message',
      ack: buf.subarray(parts.ackStart, end),
      chunkId,
    };
  }

  /** The tag in `buf[start, end)`, admitted (throws TRB_FWD_BAD_TAG otherwise); read before the bytes are rewritten. */
  private admittedTag(buf: Buffer, start: number, end: number): string {
    const tag = this.tags.decode(buf, start, end);
    this.tags.admit(tag, this.admission);
    return tag;
  }
}

/** The ack slab's size: the acks of about 1,500 messages with 16-byte ids; the slab a run's view keeps alive. */
const ACK_SLAB_BYTES = 64 * 1024;

function messageRun(buf: Buffer, tag: string, begin: number, end: number, count: number): ForwardChunk {
  return { tag, entries: buf.subarray(begin, end), count, mode: 'message' };
}
