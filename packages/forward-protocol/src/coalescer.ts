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
 * Every request is admitted (tag, times, record depth, event size) before it
 * joins a run. The first refusal stops the read: the chunks before it are
 * returned along with the error, and nothing after it is looked at.
 */
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

  constructor(
    private readonly admission: AdmissionLimits,
    maxDecompressedBytes: number,
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
    let failure: Error | null = null;
    for (let i = from; i < ranges.length; i += 2) {
      const start = ranges[i];
      const end = ranges[i + 1];
      try {
        if (!isPlainMessage(buf, start, end, parts)) {
          if (runCount > 0) out.push(messageRun(buf, runTag, runBegin, runEnd, runCount));
          runCount = 0;
          out.push(
            isAckedMessage(buf, start, end, parts)
              ? this.ackedMessage(buf, end, frameContainers[i >> 1])
              : parseRequest(buf.subarray(start, end), this.requestLimits),
          );
          continue;
        }
        const tag = this.admittedTag(buf, parts.tagStart, parts.tagEnd);
        const entryStart = parts.entryStart;
        buf[entryStart] = 0x92; // the tag's last byte becomes the entry's array header
        // [tag, time, record]: the record holds at most the frame's containers but the outer array; when that
        // many cannot break the depth rule, the framer's scan stands for the walk over the record.
        if (frameContainers[i >> 1] - 1 <= admission.maxRecordDepth) admitShallowEntry(buf, admission, entryStart, end, parts.head);
        else admitEntries(buf, admission, entryStart, end);
        if (runCount > 0 && tag !== runTag) {
          out.push(messageRun(buf, runTag, runBegin, runEnd, runCount));
          runCount = 0;
        }
        if (runCount === 0) {
          runTag = tag;
          runBegin = entryStart;
          runEnd = entryStart;
        }
        if (runEnd !== entryStart) buf.copyWithin(runEnd, entryStart, end); // overlap-safe; cheaper than Buffer#copy per message
        runEnd += end - entryStart;
        runCount++;
      } catch (err) {
        failure = asAdmissionError(err) as Error;
        break;
      }
    }
    if (runCount > 0) out.push(messageRun(buf, runTag, runBegin, runEnd, runCount));
    return failure;
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

function messageRun(buf: Buffer, tag: string, begin: number, end: number, count: number): ForwardChunk {
  return { tag, entries: buf.subarray(begin, end), count, mode: 'message' };
}
