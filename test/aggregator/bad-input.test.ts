/**
 * Bad input at the aggregator: oversized and malformed chunks are refused
 * with a coded error, get no ack, and do not disturb a good connection
 * sending at the same time. Nothing of theirs reaches the output.
 */
import { rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { silentLogger, validateConfig } from '@tributary/core';
import { EventTime, ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';
import { countIds, readOutput, tempDir, waitFor } from '@tributary/test-kit';

function send(port: number, bytes: Buffer): Promise<{ reply: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1', () => s.write(bytes));
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve({ reply: Buffer.concat(chunks), closed: true }));
    setTimeout(() => {
      s.destroy();
      resolve({ reply: Buffer.concat(chunks), closed: false });
    }, 5000).unref();
  });
}

test('oversized and malformed chunks: no ack, coded errors, other connections unaffected', async () => {
  const dir = tempDir('bad-input');
  const agg = await Aggregator.start(
    validateConfig(aggregatorConfigSpec, {
      forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false, max_frame_bytes: 64 * 1024, max_decompressed_bytes: 128 * 1024 },
      log: { path: join(dir, 'log') },
      egress: { max_wait_ms: 50 },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
      metrics: { port: 0 },
    }),
    silentLogger,
  );
  try {
    const t = new EventTime(1700000000, 0);
    const good = await ForwardConnection.connect({ host: '127.0.0.1', port: agg.ports.forward });
    const goodSends = Array.from({ length: 20 }, (_, c) =>
      good.send(
        encodePackedForward('ok', Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeEntry(t, { n: c * 50 + i }))), {
          chunk: `g${c}`,
        }),
        `g${c}`,
      ),
    );
    const [oversized, bomb, malformed, wrongShape] = await Promise.all([
      send(agg.ports.forward, encodePackedForward('bad', encodeEntry(t, { pad: 'x'.repeat(100_000) }), { chunk: 'big' })),
      send(
        agg.ports.forward,
        encodePackedForward('bad', Buffer.concat(Array.from({ length: 300 }, () => encodeEntry(t, { pad: 'y'.repeat(1000) }))), {
          chunk: 'bomb',
          compressed: 'gzip',
        }),
      ),
      send(agg.ports.forward, Buffer.from([0x93, 0xa3, 0x62, 0x61, 0x64, 0xc1, 0x00])),
      send(
        agg.ports.forward,
        Buffer.concat([
          Buffer.from([0x93, 0xa3, 0x62, 0x61, 0x64, 0xc4, 0x02, 0x01, 0x02, 0x81, 0xa5]),
          Buffer.from('chunk'),
          Buffer.from([0xa1, 0x78]),
        ]),
      ),
    ]);
    await Promise.all(goodSends);
    await good.end();
    for (const r of [oversized, bomb, malformed, wrongShape]) {
      expect(r.closed).toBe(true);
      expect(r.reply.includes(Buffer.from('ack'))).toBe(false);
    }
    await waitFor(() => readOutput(join(dir, 'out')).lines.length >= 1000, 15_000, 'the good events');
    const { lines } = readOutput(join(dir, 'out'));
    expect(countIds(lines)).toEqual({ ids: 1000, duplicates: [] });
    expect(lines.every((l) => l._tag === 'ok')).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${agg.ports.metrics}/metrics`)).text();
    for (const code of ['TRB_FWD_FRAME_TOO_LARGE', 'TRB_FWD_DECOMPRESS_TOO_LARGE', 'TRB_FWD_MALFORMED', 'TRB_FWD_SHAPE']) {
      expect(metrics).toContain(`tributary_aggregator_input_errors_total{input="forward",code="${code}"} 1`);
    }
  } finally {
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
