/**
 * Pure encoding shared by the file, S3 and Firehose sinks: records → NDJSON
 * lines, each the event's record plus `_id` (stable per event: chunk key and
 * index), `_time` (RFC 3339 with the event's nanoseconds) and `_tag`; and the
 * Hive-style object layout Athena partitions on:
 *
 *   <prefix>/<tag>/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first offset>.json.gz
 *
 * The key comes from the log position the batch starts at, so replaying a
 * batch after a crash rewrites the same object instead of adding one.
 */
import { decodeEntries } from '@tributary/forward-protocol';
import type { StoredRecord } from '../log/durable-log';

export interface FieldNames {
  id: string;
  time: string;
  tag: string;
}

export const DEFAULT_FIELDS: FieldNames = { id: '_id', time: '_time', tag: '_tag' };

export interface Line {
  tag: string;
  /** Event time, seconds since epoch (for partitioning). */
  seconds: number;
  json: string;
}

export function toLines(record: StoredRecord, fields: FieldNames = DEFAULT_FIELDS): Line[] {
  return decodeEntries(record.entries).map((e, i) => {
    const out: Record<string, unknown> = { ...e.record };
    out[fields.id] = `${record.key || `p${record.partition}o${record.offset}`}#${i}`;
    out[fields.time] = e.time.toRfc3339();
    out[fields.tag] = record.tag;
    return { tag: record.tag, seconds: e.time.seconds, json: JSON.stringify(out) };
  });
}

/** Groups a batch's lines by tag and hour; each group becomes one object. */
export function groupForObjects(records: StoredRecord[], prefix: string, fields: FieldNames = DEFAULT_FIELDS): Map<string, string[]> {
  const firstOffset = new Map<number, number>();
  for (const r of records) if (!firstOffset.has(r.partition)) firstOffset.set(r.partition, r.offset);
  const groups = new Map<string, string[]>();
  for (const r of records) {
    for (const line of toLines(r, fields)) {
      const d = new Date(line.seconds * 1000).toISOString();
      const key = [
        prefix,
        safeTag(line.tag),
        `dt=${d.slice(0, 10)}`,
        `hour=${d.slice(11, 13)}`,
        `part-${r.partition}-${String(firstOffset.get(r.partition)).padStart(20, '0')}.json.gz`,
      ]
        .filter(Boolean)
        .join('/');
      const list = groups.get(key);
      if (list) list.push(line.json);
      else groups.set(key, [line.json]);
    }
  }
  return groups;
}

/** A tag as one path segment: no slashes, no "..". */
function safeTag(tag: string): string {
  return tag.replace(/[/\\]/g, '_').replace(/^\.+/, '_');
}
