/**
 * Filters on both tiers, as processes: a forwarder with grep, record and
 * mask feeds an aggregator whose egress runs a parser and a grep (in its
 * encoder threads). After the file sink: the events either grep dropped are
 * absent, the rest carry every change, no secret survives, each `_id` keeps
 * the event's index in its aggregator chunk (a drop at egress leaves a
 * gap), and a replay of the log under another consumer group writes the
 * same objects, byte for byte, under the same keys.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { EventTime, ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';
import { type Started, exited, freePort, readOutput, startRole, tempDir, waitFor } from '@tributary/test-kit';

const TOTAL = 400;
const SECRETS = ['4111 1111 1111 1111', 'ana@example.com', 'AKIAIOSFODNN7EXAMPLE', 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0'];

/** Event n as the application logs it: every 4th is debug noise, every one carries secrets, some inside a JSON `log`. */
function event(n: number): Record<string, unknown> {
  return {
    n,
    level: n % 4 === 0 ? 'debug' : 'info',
    msg: `paid with ${SECRETS[0]} by ${SECRETS[1]}`,
    log: JSON.stringify({ user: `u${n}`, auth: `Bearer ${SECRETS[3]}`, key: SECRETS[2] }),
  };
}
const keptAtEdge = (n: number) => n % 4 !== 0;
const keptAtEgress = (n: number) => n % 10 !== 3;

async function stop(s: Started): Promise<void> {
  s.child.kill('SIGTERM');
  await exited(s.child);
}

test('forwarder grep + record + mask, aggregator parser + grep at egress: drops, changes, no secret, stable _ids, identical replay', async () => {
  const dir = tempDir('filters');
  const [aggForward, aggMetrics, aggMetrics2, fwdForward, fwdMetrics] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const aggConfig = (group: string, out: string, metrics: number) => ({
    forward: { bind: '127.0.0.1', port: aggForward, udp_heartbeat: false },
    log: { type: 'embedded', path: join(dir, 'log') },
    dedupe: { type: 'none' },
    egress: { group, max_wait_ms: 100, objects: { age_ms: 3000 } },
    sinks: [{ name: 'file', type: 'file', path: out }],
    filters: [
      { type: 'parser', match: 'app.**', key_name: 'log', format: 'json', reserve_data: true, remove_key_name_field: true },
      { type: 'grep', match: 'app.**', exclude: [{ key: 'n', pattern: '3$' }] },
    ],
    metrics: { port: metrics },
    log_level: 'warn',
  });
  const started: Started[] = [];
  try {
    const agg = await startRole('aggregator', aggConfig('first', join(dir, 'out1'), aggMetrics), join(dir, 'agg'), aggMetrics);
    started.push(agg);
    const fwd = await startRole(
      'forwarder',
      {
        forward: { port: fwdForward, udp_heartbeat: false },
        http: { enabled: false },
        buffer: { path: join(dir, 'buffer'), flush_interval_ms: 50, chunk_limit_bytes: 8 * 1024 },
        output: { servers: [{ host: '127.0.0.1', port: aggForward }] },
        filters: [
          { type: 'grep', match: 'app.**', exclude: [{ key: 'level', pattern: '^debug$' }] },
          { type: 'record', match: 'app.**', set: { home: '${env.HOME}', service: '${tag_parts[1]}' } },
          { type: 'mask' },
        ],
        metrics: { port: fwdMetrics },
        log_level: 'warn',
      },
      join(dir, 'fwd'),
      fwdMetrics,
    );
    started.push(fwd);

    const conn = await ForwardConnection.connect({ host: '127.0.0.1', port: fwdForward, ackTimeoutMs: 10_000, connectTimeoutMs: 2000 });
    for (let first = 0; first < TOTAL; first += 50) {
      const ns = Array.from({ length: 50 }, (_, i) => first + i);
      const entries = Buffer.concat(ns.map((n) => encodeEntry(new EventTime(1_700_000_000, n), event(n))));
      await conn.send(encodePackedForward('app.checkout', entries, { chunk: `c${first}`, size: ns.length }), `c${first}`);
    }
    await conn.end();

    const expected = Array.from({ length: TOTAL }, (_, n) => n).filter((n) => keptAtEdge(n) && keptAtEgress(n));
    const out1 = join(dir, 'out1');
    await waitFor(() => readOutput(out1).lines.length >= expected.length, 60_000, `${expected.length} lines in the first output`);
    await new Promise((r) => setTimeout(r, 500)); // nothing more may come
    const { lines, files } = readOutput(out1);

    // dropped events absent (both tiers), the rest present once, with the forwarder's and the egress's changes
    expect(lines.map((l) => l.n).sort((a, b) => (a as number) - (b as number))).toEqual(expected);
    for (const l of lines) {
      expect(l).toMatchObject({ level: 'info', home: process.env.HOME, service: 'checkout', user: `u${l.n}`, _tag: 'app.checkout' });
      expect(l).not.toHaveProperty('log');
      expect(l.msg).toBe('paid with [REDACTED] by [REDACTED]');
      expect(l.auth).toBe('Bearer [REDACTED]');
    }
    // no secret survives anywhere in the objects
    const text = files.map((f) => gunzipSync(readFileSync(f)).toString('utf8')).join('');
    for (const s of SECRETS) expect(text).not.toContain(s);

    // _id = the aggregator chunk's key and the event's index in that chunk: the forwarder keeps order, so within a
    // chunk the index advances by the forwarder-kept events between two lines, egress drops included
    const edgeOrder = new Map(
      Array.from({ length: TOTAL }, (_, n) => n)
        .filter(keptAtEdge)
        .map((n, i) => [n, i]),
    );
    const byChunk = new Map<string, Array<{ index: number; n: number }>>();
    for (const l of lines) {
      const [key, index] = (l._id as string).split('#');
      byChunk.set(key, [...(byChunk.get(key) ?? []), { index: Number(index), n: l.n as number }]);
    }
    let gaps = 0;
    for (const events of byChunk.values()) {
      events.sort((a, b) => a.index - b.index);
      const base = (edgeOrder.get(events[0].n) as number) - events[0].index;
      for (const e of events) expect(edgeOrder.get(e.n) as number).toBe(base + e.index);
      for (let i = 1; i < events.length; i++) if (events[i].index - events[i - 1].index > 1) gaps++;
    }
    expect(gaps).toBeGreaterThan(0);

    const fwdMetricsText = await (await fetch(`http://127.0.0.1:${fwdMetrics}/metrics`)).text();
    expect(fwdMetricsText).toContain(`tributary_forwarder_filter_dropped_events_total{filter="0_grep"} ${TOTAL / 4}`);
    const aggMetricsText = await (await fetch(`http://127.0.0.1:${aggMetrics}/metrics`)).text();
    const egressDrops = Array.from({ length: TOTAL }, (_, n) => n).filter((n) => keptAtEdge(n) && !keptAtEgress(n)).length;
    expect(aggMetricsText).toContain(`tributary_aggregator_filter_dropped_events_total{filter="1_grep"} ${egressDrops}`);

    // replay: the same log read again by a new consumer group writes the same objects under the same keys
    await stop(fwd);
    await stop(agg);
    started.length = 0;
    const out2 = join(dir, 'out2');
    started.push(await startRole('aggregator', aggConfig('replay', out2, aggMetrics2), join(dir, 'agg2'), aggMetrics2));
    await waitFor(() => readOutput(out2).lines.length >= expected.length, 60_000, 'the replay output');
    await new Promise((r) => setTimeout(r, 500));
    const replayed = readOutput(out2).files;
    const contents = (root: string, list: string[]) =>
      Object.fromEntries(list.map((f) => [relative(root, f), gunzipSync(readFileSync(f)).toString('base64')]));
    expect(contents(out2, replayed)).toEqual(contents(out1, files));
  } finally {
    for (const s of started) await stop(s);
    rmSync(dir, { recursive: true, force: true });
  }
});
