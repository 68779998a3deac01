/**
 * Every error and log code Tributary emits, in one place: what it means and
 * what to do about it. A code is stable: operators alert and grep on it, and
 * the `code` label of the `*_errors_total` metrics carries it.
 *
 * Use sites write `Codes.TRB_X`: the code reads as logs print it, and the
 * compiler checks it is registered here (`TributaryError` takes only an
 * `ErrorCode`). docs/error-codes.md is generated from this table and a test
 * keeps it current.
 */

const meanings = {
  // configuration and process
  TRB_CFG_INVALID: 'The configuration failed validation; the message lists every problem with its key path. Nothing started.',
  TRB_STOP_FAILED: 'A graceful stop (SIGTERM) failed; the process exits 1. What was acked is on disk and is sent after the restart.',
  TRB_UNCAUGHT_EXCEPTION: 'An exception escaped every handler: a bug. The process logs it and exits 1; acked data is on disk.',
  TRB_UNHANDLED_REJECTION: 'A promise rejection escaped every handler: a bug. The process logs it and exits 1; acked data is on disk.',
  TRB_ORPHANED: '`tributary up` lost the command that started it; it drains and stops as on SIGTERM.',

  // forward protocol (both roles' forward input, the forwarder's output)
  TRB_FWD_MALFORMED: 'The bytes are not valid msgpack (e.g. the never-used byte 0xc1). No ack; the connection is closed.',
  TRB_FWD_SHAPE: 'Valid msgpack, but not a Forward Protocol request of any mode. No ack; the connection is closed.',
  TRB_FWD_FRAME_TOO_LARGE: 'One request is larger than `forward.max_frame_bytes`. No ack; the connection is closed.',
  TRB_FWD_DECOMPRESS_TOO_LARGE: 'Compressed entries inflate past `forward.max_decompressed_bytes`. No ack; the connection is closed.',
  TRB_FWD_COMPRESSION: 'The compressed payload could not be inflated, or uses an unsupported codec.',
  TRB_FWD_AUTH: 'Shared-key or user authentication failed (`security`).',
  TRB_FWD_JSON:
    'A JSON request that is not valid JSON, is not a request of the Forward protocol, holds a record MessagePack cannot encode, or comes while authentication is required.',
  TRB_FWD_ACK_TIMEOUT: 'No acknowledgement (or a wrong one) within the ack timeout; the chunk is resent.',
  TRB_FWD_BAD_TAG: 'Refused at the door: the tag is empty, over 1,024 bytes, not UTF-8 or holds a control character.',
  TRB_FWD_BAD_CHUNK_ID: 'Refused at the door: the chunk id is longer than 128 bytes.',
  TRB_FWD_BAD_TIME: 'Refused at the door: an event time outside [0, 2^32) seconds, not finite, or nanoseconds ≥ 1e9.',
  TRB_FWD_TOO_DEEP: 'Refused at the door: a record nests containers deeper than 64 levels.',
  TRB_FWD_EVENT_TOO_LARGE: "Refused at the door: one event is larger than the forwarder's `buffer.chunk_limit_bytes`.",
  TRB_FWD_TIMEOUT: 'The connection sent nothing for `forward.idle_timeout_ms`, or did not finish the handshake in time; closed.',
  TRB_FWD_TOO_MANY_CONNECTIONS: '`forward.max_connections` was reached; the new connection was closed.',
  TRB_FWD_CONNECTION_BUFFER: "A client's bytes passed the per-connection limit before a frame completed; closed.",
  TRB_FWD_CONNECTION: 'The connection closed or failed while requests were in flight; unacked chunks are resent.',
  TRB_FWD_ERROR: 'A forward connection failed for a reason without its own code; the log line carries the message.',

  // HTTP input
  TRB_HTTP_BAD_REQUEST: 'The HTTP body or path could not be read as events (400, with the reason).',
  TRB_HTTP_TOO_LARGE: 'The HTTP body is larger than `http.body_limit_bytes` (413).',
  TRB_HTTP_TOO_MANY_RECORDS: 'The HTTP body holds more records than `http.max_records_per_request` (413).',
  TRB_HTTP_BUSY: 'The next stage is full, or bodies being received passed `http.max_pending_bytes` (503 with Retry-After).',
  TRB_HTTP_TIMEOUT: 'The HTTP request was not received within the header or request deadline (408).',
  TRB_HTTP_ERROR: 'An HTTP request failed for a reason without its own code (5xx); the log line carries the message.',

  // tail input
  TRB_TAIL_READ: 'A followed file could not be opened, stat-ed or read; it is tried again at the next poll.',
  TRB_TAIL_POSITIONS: 'The tail position journal could not be written; no batch is handed over until it can (retried with backoff).',
  TRB_TAIL_REFUSED: 'The buffer did not accept a batch of tailed lines (full, closed); the same lines are offered again after a backoff.',
  TRB_TAIL_PARSE: 'A tailed line did not parse with `tail.parser`; it is kept as `{message}` (counted).',
  TRB_TAIL_LONG_LINE: 'A tailed line was longer than `tail.max_line_bytes`; it was cut or skipped as `tail.long_lines` says (counted).',
  TRB_TAIL_ROTATED:
    'A followed file was renamed away, truncated (copytruncate) or deleted; it is finished and closed, or read again from its start.',

  // forwarder buffer
  TRB_BUF_FULL: 'The buffer holds `buffer.max_bytes`; with `overflow: block` the input refuses until output drains it.',
  TRB_BUF_IO: 'A disk buffer read, write or sync failed; the log line names the operation and errno.',
  TRB_BUF_CLOSED: 'An append arrived after the buffer was closed (during a stop); it was not acked.',
  TRB_BUF_BROKEN: 'An fdatasync failed: the buffer accepts no append until a restart (the page cache can no longer be trusted).',
  TRB_BUF_RESENT:
    'A batch of acked messages met a resend of some of its ids stored meanwhile; it was refused (not acked) and the sender resends it.',
  TRB_BUF_DROPPED: 'The buffer was full under `overflow: drop_oldest`: the oldest chunk was dropped (counted).',
  TRB_BUF_RECOVERED: 'At start, events an earlier run left in the disk buffer were recovered and will be sent.',
  TRB_BUF_RECOVERY_SKIP: 'At start, part of a buffer file could not be read (torn or corrupt); the rest was kept.',

  // forwarder output
  TRB_OUT_NODE_DOWN: 'An aggregator could not be reached or failed; the output moves to the next one.',
  TRB_OUT_SOCKET_ERROR: 'A socket to an aggregator failed; its chunks are resent.',
  TRB_OUT_CHUNK_FAILED: 'A chunk failed to send; it is retried with backoff.',
  TRB_OUT_DROPPED: 'A chunk reached `output.retry.max_attempts` and no dead-letter path is set: dropped (counted).',
  TRB_OUT_DEAD_LETTER: 'A chunk reached `output.retry.max_attempts` and was written to the dead-letter directory.',
  TRB_OUT_DEAD_LETTER_FAILED: 'Writing a chunk to the dead-letter directory failed; the chunk stays buffered and is retried.',
  TRB_OUT_INTERNAL: 'The output hit an unexpected error on one chunk (a bug); the chunk is kept and retried.',

  // aggregator dedupe
  TRB_DEDUPE_UNAVAILABLE: 'Redis did not answer in time; `fail_closed` refuses acks (senders retry), `fail_open` writes unchecked.',
  TRB_DEDUPE_BUSY: 'Another node holds the claim on this chunk; no ack, the sender resends and it is then acked or deduped.',
  TRB_DEDUPE_STATE_LOST: 'Redis lost the dedupe marks (flush, failover to an empty replica); they are rebuilt from the logs.',
  TRB_DEDUPE_REBUILDING: 'The dedupe marks are being rebuilt; `fail_closed` refuses acks meanwhile.',
  TRB_DEDUPE_REBUILD: 'Re-marking the logged chunks in Redis failed and is retried, or finished without every peer reporting.',
  TRB_DEDUPE_DUPLICATES: "Chunks of this node's log were also written by another node while Redis had lost its marks.",
  TRB_DEDUPE_UNVERIFIED: '`fail_open`: chunks written while the marks are rebuilt; resent ones may be written twice.',

  // aggregator durable log
  TRB_LOG_APPEND: 'Appending to the log failed (disk, broker); the batch is not acked and the sender resends.',
  TRB_LOG_CLOSED: 'An append or read arrived after the log was closed (during a stop); not acked.',
  TRB_LOG_CORRUPT:
    "A log segment holds bytes that are not a valid record; the reader stops there and says where. Kafka: a record's value has a codec this version does not read (or is not the gzip its header says); the record goes to dead letters whole, with its stored bytes, and reading goes on.",
  TRB_LOG_COMMIT: "Saving a consumer group's position failed (disk full, I/O error, rebalance); retried.",
  TRB_LOG_COMMIT_UNREADABLE: "A consumer group's saved position cannot be read; its reader stops until an operator fixes it.",
  TRB_LOG_UNENCODABLE: "A record the log's format cannot hold (e.g. a tag over 65,535 bytes); that append is refused.",
  TRB_LOG_BACKLOG: 'Egress stayed `log.max_backlog_bytes` behind for 30 s; the batch is refused unacked and resent.',
  TRB_LOG_REBALANCING: 'Kafka: the consumer group is rebalancing; reads and commits wait for the new assignment.',
  TRB_LOG_REVOKED:
    'Kafka: partitions were revoked (rebalance); their queued records are dropped and their new owner reads them from the last commit.',
  TRB_LOG_ENDS: "Kafka: looking up the topic's end offsets failed; the reader does not report itself caught up until it succeeds.",
  TRB_LOG_CONSUMER_CRASH:
    'Kafka: the consumer crashed; the line says whether kafkajs restarts it (if not, egress gets nothing until a restart).',
  TRB_LOG_READ: 'Reading the log failed; egress backs off and reads again.',
  TRB_LOG_TIMESTAMP_TYPE:
    "Kafka: the topic does not stamp records with the broker's append time (message.timestamp.type=LogAppendTime), or that could not be read; egress's cuts on age then follow producer clocks, and a replay may cut differently. Set it on the topic.",
  TRB_LOG_CLEANUP:
    "Kafka: the throwaway consumer that read the topic's tail (a dedupe rebuild) could not be disconnected or its group deleted; the keys were read, and the broker expires the group.",

  // aggregator egress and sinks
  TRB_EGRESS_LOG: 'Egress could not poll or commit the log; it backs off and retries (see `/readyz`).',
  TRB_EGRESS_ENCODER: 'An encoder thread died; its jobs fail over to the main thread and the thread is replaced.',
  TRB_EGRESS_DEAD_LETTER: 'Events egress could not encode were dead-lettered for a sink, with the reason.',
  TRB_EGRESS_BUG: 'An object window could not be finished because of a bug; egress stops before committing past it.',
  TRB_SINK_ERROR: 'A sink write failed; retryable ones back off, permanent ones dead-letter for that sink.',
  TRB_SINK_FILE: 'The file sink could not write or sync an object; retried.',
  TRB_SINK_S3: 'S3 refused or failed a PUT; retried, or dead-lettered when permanent.',
  TRB_SINK_FIREHOSE: 'Firehose refused a PutRecordBatch, or some records in it; the failed records are retried.',
  TRB_SINK_DEAD_LETTER: "A sink's rejected events were written to its dead-letter path, or dropped (counted) when it has none.",
  // filters
  TRB_FILTER_AWS_METADATA:
    'The aws_metadata filter could not read the instance metadata service (IMDSv2); events flow on without its fields (counted as failed) and it retries every `retry_ms`. Logged once until a read succeeds again.',
} as const;

export type ErrorCode = keyof typeof meanings;

/** `Codes.TRB_X === 'TRB_X'`, for every registered code. */
export const Codes = Object.freeze(Object.fromEntries(Object.keys(meanings).map((c) => [c, c]))) as { readonly [C in ErrorCode]: C };

/** Every code with its meaning, in registry order (for the generated reference). */
export function errorCodeReference(): ReadonlyArray<{ code: ErrorCode; meaning: string }> {
  return (Object.keys(meanings) as ErrorCode[]).map((code) => ({ code, meaning: meanings[code] }));
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(meanings, code);
}
