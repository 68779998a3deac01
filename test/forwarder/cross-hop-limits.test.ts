/**
 * Limits agree across hops (issue 10 item 3): what the forwarder acks, the
 * aggregators' default limits accept. Two same-tag requests of about 1 MB
 * and 16.3 MB (which once merged into one 17.2 MB chunk), and a gzip chunk
 * inflating to 24 MiB (over the aggregator's 16 MiB frame limit), are all
 * acked by the forwarder, re-chunked within the limits and delivered: no
 * frame is refused at the aggregator. One event over the chunk limit is
 * refused at the forwarder's door, before the ack.
 */
import { rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { silentLogger, validateConfig } from '@tributary/core';
import { ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { readOutput, tempDir, waitFor } from '@tributary/test-kit';

const MB = 1024 * 1024;

function entries(tag: string, from: number, count: number): Buffer {
  const pad = 'p'.repeat(400);
  return Buffer.concat(Array.from({ length: count }, (_, i) => encodeEntry(1700000000, { tag, n: from + i, pad })));
}

test('oversized merges and inflated chunks are re-chunked within the aggregator defaults and delivered', async () => {
  const dir = tempDir('cross-hop');
  const agg = await Aggregator.start(
    validateConfig(aggregatorConfigSpec, {
      forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false },
      log: { path: join(dir, 'log') },
      egress: { max_wait_ms: 50 },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
      metrics: { port: 0 },
    }),
    silentLogger,
  );
  const fwd = await Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { type: 'memory', flush_interval_ms: 200 },
      output: { servers: [{ host: '127.0.0.1', port: agg.ports.forward }] },
      metrics: { port: 0 },
    }),
    silentLogger,
  );
  try {
    const client = await ForwardConnection.connect({ host: '127.0.0.1', port: fwd.ports.forward });
    const small = entries('merge', 0, 2_300); // ~1 MB
    const large = entries('merge', 2_300, 38_000); // ~16.3 MB, under the 16 MiB frame limit
    expect(large.length).toBeGreaterThan(16 * 1000 * 1000);
    const inflating = entries('gzip', 0, 55_000); // ~24 MiB once inflated
    expect(inflating.length).toBeGreaterThan(16 * MB);
    await Promise.all([
      client.send(encodePackedForward('merge', small, { chunk: 'm1' }), 'm1'),
      client.send(encodePackedForward('merge', large, { chunk: 'm2' }), 'm2'),
      client.send(encodePackedForward('gzip', inflating, { chunk: 'z1', compressed: 'gzip' }), 'z1'),
    ]);
    await client.end();

    // One event larger than chunk_limit_bytes (1 MiB): refused before the ack, connection closed.
    const refused = await new Promise<{ acked: boolean; closed: boolean }>((resolve) => {
      const s: Socket = connect(fwd.ports.forward, '127.0.0.1', () =>
        s.write(encodePackedForward('huge', encodeEntry(1700000000, { pad: 'h'.repeat(1.5 * MB) }), { chunk: 'h1' })),
      );
      const got: Buffer[] = [];
      s.on('data', (d) => got.push(d));
      s.on('error', () => {});
      s.on('close', () => resolve({ acked: Buffer.concat(got).includes(Buffer.from('ack')), closed: true }));
      setTimeout(() => {
        s.destroy();
        resolve({ acked: false, closed: false });
      }, 10_000).unref();
    });
    expect(refused).toEqual({ acked: false, closed: true });

    const expected = 2_300 + 38_000 + 55_000;
    await waitFor(() => readOutput(join(dir, 'out')).lines.length >= expected, 60_000, 'every acked event');
    const { lines } = readOutput(join(dir, 'out'));
    expect(lines.length).toBe(expected);
    expect(new Set(lines.filter((l) => l._tag === 'merge').map((l) => l.n)).size).toBe(40_300);
    expect(new Set(lines.filter((l) => l._tag === 'gzip').map((l) => l.n)).size).toBe(55_000);
    const aggMetrics = await (await fetch(`http://127.0.0.1:${agg.ports.metrics}/metrics`)).text();
    expect(aggMetrics).not.toMatch(/input_errors_total\{[^}]*code="TRB_FWD_(FRAME|DECOMPRESS)_TOO_LARGE"/);
    const fwdMetrics = await (await fetch(`http://127.0.0.1:${fwd.ports.metrics}/metrics`)).text();
    expect(fwdMetrics).toMatch(/input_errors_total\{input="forward",code="TRB_FWD_EVENT_TOO_LARGE"\} 1/);
  } finally {
    await fwd.stop();
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
