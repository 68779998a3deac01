/**
 * `tributary up` as a separate process, 100,000 events through real clients
 * (fluent-logger npm in PackedForward and Message mode with acks, HTTP
 * batches): every event lands in <data-dir>/out exactly once, counted by
 * `_id`. SIGTERM exits 0; a restart on the same data dir takes more events and
 * re-emits nothing.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { countIds, exited, freePort, readOutput, startUp, tempDir, waitFor } from '@tributary/test-kit';

// biome-ignore lint/suspicious/noExplicitAny: fluent-logger ships loose typings
const fluent: any = require('fluent-logger');

function up(dataDir: string, ports: { forward: number; http: number; metrics: number }) {
  const { forward, http, metrics } = ports;
  return startUp(['--data-dir', dataDir, '--forward-port', `${forward}`, '--http-port', `${http}`, '--metrics-port', `${metrics}`]);
}

function emitAll(sender: { emit: (...a: unknown[]) => void }, tag: string, from: number, n: number): Promise<unknown> {
  return Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<void>((resolve, reject) =>
          sender.emit(tag, { n: from + i, msg: `event ${from + i}` }, (err?: Error) => (err ? reject(err) : resolve())),
        ),
    ),
  );
}

test('100,000 events through real clients land exactly once; SIGTERM and restart lose and repeat nothing', async () => {
  const dir = tempDir('up');
  const ports = { forward: await freePort(), http: await freePort(), metrics: await freePort() };
  const out = join(dir, 'out');
  let child = await up(dir, ports);
  try {
    const quiet = { info() {}, error() {} };
    const packed = fluent.createFluentSender('up', {
      host: '127.0.0.1',
      port: ports.forward,
      eventMode: 'PackedForward',
      flushInterval: 20,
      requireAckResponse: true,
      ackResponseTimeout: 30_000,
      internalLogger: quiet,
    });
    const message = fluent.createFluentSender('up', {
      host: '127.0.0.1',
      port: ports.forward,
      requireAckResponse: true,
      ackResponseTimeout: 30_000,
      internalLogger: quiet,
    });
    // As an HTTP client should: a 503 (the pipeline is busy, nothing was taken) is sent again after a pause.
    const http = async (from: number, n: number) => {
      const body = JSON.stringify(Array.from({ length: n }, (_, i) => ({ n: from + i, msg: `event ${from + i}` })));
      let status = 0;
      for (let attempt = 0; attempt < 100; attempt++) {
        try {
          const res = await fetch(`http://127.0.0.1:${ports.http}/up.http`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          status = res.status;
        } catch (err) {
          throw new Error(`POST to tributary up failed (${(err as Error).message}); its output:\n${child.output()}`);
        }
        if (status !== 503) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
    };
    await Promise.all([
      (async () => {
        for (let b = 0; b < 9; b++) await emitAll(packed, 'packed', b * 10_000, 10_000);
      })(),
      emitAll(message, 'msg', 90_000, 5_000),
      (async () => {
        for (let b = 0; b < 50; b++) await http(95_000 + b * 100, 100);
      })(),
    ]);
    packed.end();
    message.end();

    await waitFor(() => readOutput(out).lines.length >= 100_000, 120_000, '100,000 events in the output');
    let { lines } = readOutput(out);
    expect(countIds(lines)).toEqual({ ids: 100_000, duplicates: [] });
    expect(new Set(lines.map((l) => l.n)).size).toBe(100_000);
    expect(new Set(lines.map((l) => l._tag))).toEqual(new Set(['up.packed', 'up.msg', 'up.http']));

    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    child = await up(dir, ports);
    await http(100_000, 1000);
    await waitFor(() => readOutput(out).lines.length >= 101_000, 60_000, 'events sent after the restart');
    await new Promise((r) => setTimeout(r, 1000)); // anything replayed by mistake would land now
    ({ lines } = readOutput(out));
    expect(countIds(lines)).toEqual({ ids: 101_000, duplicates: [] });
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);
