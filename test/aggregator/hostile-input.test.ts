/**
 * Hostile input at the aggregator's doors (issue 10, items 1, 2 and 8): each
 * event that once stalled every output is now refused before the ack with a
 * coded error and a metric (HTTP: 400 naming it), or accepted and carried to
 * the sink. Good events sent after each one are acked, then delivered; the
 * node stays up and stops cleanly.
 */
import { rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { silentLogger, validateConfig } from '@tributary/core';
import { EventTime, ForwardConnection, encodeEntry, encodeMessage, encodePackedForward } from '@tributary/forward-protocol';
import { readOutput, tempDir, waitFor } from '@tributary/test-kit';
import { Packr } from 'msgpackr';

/**
 * Sends `bytes` on a fresh connection; resolves with what came back and
 * whether the server closed it: at the close, at the first ack, or after 5 s.
 */
function send(port: number, bytes: Buffer): Promise<{ reply: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1', () => s.write(bytes));
    const chunks: Buffer[] = [];
    s.on('data', (d) => {
      chunks.push(d);
      if (Buffer.concat(chunks).includes(Buffer.from('ack'))) {
        resolve({ reply: Buffer.concat(chunks), closed: false });
        s.end();
      }
    });
    s.on('end', () => s.end());
    s.on('error', () => {});
    s.on('close', () => resolve({ reply: Buffer.concat(chunks), closed: true }));
    setTimeout(() => {
      s.destroy();
      resolve({ reply: Buffer.concat(chunks), closed: false });
    }, 5000).unref();
  });
}

/** A PackedForward request asking for an ack, whose single entry is `[time bytes, record bytes]`. */
function packed(tag: string, time: Buffer, record: Buffer, chunk: string): Buffer {
  return encodePackedForward(tag, Buffer.concat([Buffer.from([0x92]), time, record]), { chunk });
}
const uint64 = (v: bigint) => Buffer.concat([Buffer.from([0xcf]), Buffer.from(new BigUint64Array([v]).buffer).reverse()]);
const float64 = (v: number) => {
  const b = Buffer.alloc(9);
  b[0] = 0xcb;
  b.writeDoubleBE(v, 1);
  return b;
};
const T = Buffer.from([0xce, 0x65, 0x53, 0xf1, 0x00]); // 1700000000
const map1 = (key: Buffer, value: Buffer) => Buffer.concat([Buffer.from([0x81]), key, value]);
const str = (s: string) => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);

test('refused before the ack, or carried: nothing stalls the output, good events follow', async () => {
  const dir = tempDir('hostile');
  const agg = await Aggregator.start(
    validateConfig(aggregatorConfigSpec, {
      forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false },
      http: { enabled: true, bind: '127.0.0.1', port: 0 },
      log: { path: join(dir, 'log') },
      egress: { max_wait_ms: 50 },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
      metrics: { port: 0 },
    }),
    silentLogger,
  );
  try {
    const port = agg.ports.forward;
    const deep = Buffer.concat([...Array.from({ length: 100_000 }, () => Buffer.from([0x81, 0xa1, 0x61])), Buffer.from([0x80])]);
    const refused: Array<[string, Buffer, string]> = [
      ['time 2^53', packed('bad', uint64(2n ** 53n), map1(str('n'), Buffer.from([0x01])), 'r1'), 'TRB_FWD_BAD_TIME'],
      ['time 10^13', packed('bad', uint64(10n ** 13n), map1(str('n'), Buffer.from([0x01])), 'r2'), 'TRB_FWD_BAD_TIME'],
      ['time NaN', packed('bad', float64(Number.NaN), map1(str('n'), Buffer.from([0x01])), 'r3'), 'TRB_FWD_BAD_TIME'],
      ['time +Inf', packed('bad', float64(Number.POSITIVE_INFINITY), map1(str('n'), Buffer.from([0x01])), 'r4'), 'TRB_FWD_BAD_TIME'],
      ['time -Inf', packed('bad', float64(Number.NEGATIVE_INFINITY), map1(str('n'), Buffer.from([0x01])), 'r5'), 'TRB_FWD_BAD_TIME'],
      ['100,000 deep', packed('bad', T, deep, 'r6'), 'TRB_FWD_TOO_DEEP'],
      ['tag with NUL', packed('a\u0000b', T, map1(str('n'), Buffer.from([0x01])), 'r7'), 'TRB_FWD_BAD_TAG'],
      ['1,100-byte tag', packed(`long.${'x'.repeat(1095)}`, T, map1(str('v'), Buffer.from([0x01])), 'r9'), 'TRB_FWD_BAD_TAG'],
      ['64 KiB tag', encodeMessage('t'.repeat(65_536), 1700000000, { n: 1 }, { chunk: 'r8' }), 'TRB_FWD_BAD_TAG'],
      ['64 KiB chunk id', encodeMessage('bad', 1700000000, { n: 1 }, { chunk: 'c'.repeat(65_536) }), 'TRB_FWD_BAD_CHUNK_ID'],
    ];
    const carried: Array<[string, Buffer]> = [
      ['ext type 5', packed('carried', T, map1(str('v'), Buffer.from([0xd4, 0x05, 0x01])), 'c1')],
      ['ext type 0x42', packed('carried', T, map1(str('v'), Buffer.from([0xd5, 0x42, 0x01, 0x02])), 'c2')],
      ['ext type 0x70', packed('carried', T, map1(str('v'), Buffer.from([0xc7, 0x01, 0x70, 0x09])), 'c3')],
      ['non-string key', packed('carried', T, map1(Buffer.from([0x07]), str('seven')), 'c4')],
      ['300-byte tag', packed(`carried.${'x'.repeat(292)}`, T, map1(str('v'), Buffer.from([0x01])), 'c5')],
    ];
    const good = await ForwardConnection.connect({ host: '127.0.0.1', port });
    let sent = 0;
    const sendGood = () => {
      const n = sent++;
      return good.send(encodePackedForward('ok', encodeEntry(new EventTime(1700000000, 0), { good: n }), { chunk: `g${n}` }), `g${n}`);
    };
    for (const [name, bytes, code] of refused) {
      const r = await send(port, bytes);
      expect({ name, closed: r.closed, acked: r.reply.includes(Buffer.from('ack')) }).toEqual({ name, closed: true, acked: false });
      await sendGood();
      const metrics = await (await fetch(`http://127.0.0.1:${agg.ports.metrics}/metrics`)).text();
      expect(metrics).toContain(`tributary_aggregator_input_errors_total{input="forward",code="${code}"}`);
    }
    for (const [name, bytes] of carried) {
      const r = await send(port, bytes);
      expect({ name, acked: r.reply.includes(Buffer.from('ack')) }).toEqual({ name, acked: true });
      await sendGood();
    }

    // HTTP: a refusal is a 400 naming what was wrong.
    const http = `http://127.0.0.1:${agg.ports.http}`;
    const post = (path: string, body: string | Buffer, type = 'application/json') =>
      fetch(`${http}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
    const nul = await post('/a%00b', '{"a":1}');
    expect(nul.status).toBe(400);
    expect(await nul.json()).toMatchObject({ code: 'TRB_FWD_BAD_TAG' });
    const badPercent = await post('/a%ZZ%E0', '{"a":1}');
    expect(badPercent.status).toBe(400);
    const deepJson = await post('/deep', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`);
    expect(deepJson.status).toBe(400);
    expect(await deepJson.json()).toMatchObject({ code: 'TRB_FWD_TOO_DEEP' });
    const farTime = await post('/ok?time=1e10', '{"a":1}');
    expect(farTime.status).toBe(400);
    expect(await farTime.json()).toMatchObject({ code: 'TRB_FWD_BAD_TIME' });
    const bigint = await post('/bigint', new Packr({ useRecords: false }).pack({ big: 18446744073709551615n }), 'application/msgpack');
    expect(bigint.status).toBe(200);
    expect((await post('/ok', '{"http":"good"}')).status).toBe(200);

    await waitFor(
      () => {
        const { lines } = readOutput(join(dir, 'out'));
        return (
          lines.filter((l) => l._tag === 'ok').length >= sent + 1 &&
          lines.filter((l) => l._tag === 'carried').length >= 4 &&
          lines.some((l) => l._tag === `carried.${'x'.repeat(292)}`)
        );
      },
      15_000,
      'the good and carried events',
    );
    const { lines } = readOutput(join(dir, 'out'));
    expect(lines.filter((l) => l._tag === 'ok' && 'good' in l).length).toBe(sent);
    expect(lines.some((l) => l._tag === 'ok' && l.http === 'good')).toBe(true);
    expect(lines.filter((l) => l._tag === 'bad').length).toBe(0);
    await good.end();
  } finally {
    const stopped = Date.now();
    await agg.stop();
    expect(Date.now() - stopped).toBeLessThan(15_000);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
