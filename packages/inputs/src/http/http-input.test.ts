import { request } from 'node:http';
import { Writable } from 'node:stream';
import { Codes, RetryableError, createLogger } from '@tributary/core';
import { httpInputSchema } from './config';
import { createHttpInput } from './http-input';

function post(port: number, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

test('a request the next stage refuses gets 503, is counted by its code and logged once per code per interval', async () => {
  const lines: { level: number; code?: string; msg: string }[] = [];
  const logger = createLogger(
    'http-input-test',
    'info',
    new Writable({
      write(line: Buffer, _enc, done) {
        lines.push(JSON.parse(line.toString('utf8')));
        done();
      },
    }),
  );
  const refused: string[] = [];
  const config = { ...Object.fromEntries(Object.entries(httpInputSchema.properties).map(([k, v]) => [k, v.default])), port: 0 };
  const input = createHttpInput(config as never, { logger, onRefused: (code) => refused.push(code) });
  await input.start(async () => {
    throw new RetryableError(Codes.TRB_BUF_IO, 'A disk buffer write failed (EIO).');
  });
  try {
    const port = input.address.port;
    expect(await post(port, '/app.web', JSON.stringify({ a: 1 }))).toBe(503);
    expect(await post(port, '/app.web', JSON.stringify({ a: 2 }))).toBe(503);
  } finally {
    await input.stop(0);
  }
  expect(refused).toEqual(['TRB_BUF_IO', 'TRB_BUF_IO']);
  const warned = lines.filter((l) => l.code === 'TRB_BUF_IO');
  expect(warned.map((l) => [l.level, l.msg])).toEqual([
    [40, "The next stage refused an HTTP request's events; answered 503: A disk buffer write failed (EIO)."],
  ]);
});

/** A chunked POST (no content-length) of `bytes` bytes; resolves with the status, or 0 when the server cut it off. */
function postChunked(port: number, bytes: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/app.web', method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', () => resolve(0));
    req.write(`{"pad":"${'x'.repeat(bytes)}`);
    req.end('"}');
  });
}

test('requests over the body budget get 503 each, counted each, with one error line per code per interval', async () => {
  const lines: { level: number; code?: string; msg: string }[] = [];
  const logger = createLogger(
    'http-input-test',
    'info',
    new Writable({
      write(line: Buffer, _enc, done) {
        lines.push(JSON.parse(line.toString('utf8')));
        done();
      },
    }),
  );
  const refused: string[] = [];
  const defaults = Object.fromEntries(Object.entries(httpInputSchema.properties).map(([k, v]) => [k, v.default]));
  const input = createHttpInput({ ...defaults, port: 0, max_pending_bytes: 65536 } as never, {
    logger,
    onRefused: (code) => refused.push(code),
  });
  await input.start(async () => {});
  try {
    const port = input.address.port;
    expect([await postChunked(port, 200_000), await postChunked(port, 200_000)]).toEqual([503, 503]);
  } finally {
    await input.stop(0);
  }
  expect(refused).toEqual([Codes.TRB_HTTP_BUSY, Codes.TRB_HTTP_BUSY]);
  expect(lines.filter((l) => l.code === Codes.TRB_HTTP_BUSY).map((l) => l.level)).toEqual([50]);
});

test('a record the encoder refuses (keys constructor and toJSON that are no functions) is a bad request (400), not a server error', async () => {
  const refused: string[] = [];
  const config = { ...Object.fromEntries(Object.entries(httpInputSchema.properties).map(([k, v]) => [k, v.default])), port: 0 };
  const input = createHttpInput(config as never, { logger: createLogger('t', 'silent'), onRefused: (code) => refused.push(code) });
  const accepted: number[] = [];
  await input.start(async (chunks) => {
    for (const c of chunks) accepted.push(c.count);
  });
  try {
    const port = input.address.port;
    expect(await post(port, '/app.web', JSON.stringify({ constructor: 1, toJSON: 1, a: 1 }))).toBe(400);
    expect(await post(port, '/app.web', JSON.stringify([{ a: 1 }, { constructor: 'c', toJSON: 'x' }]))).toBe(400);
    expect(await post(port, '/app.web', JSON.stringify({ a: 1 }))).toBe(200);
  } finally {
    await input.stop(0);
  }
  expect(refused).toEqual([Codes.TRB_HTTP_BAD_REQUEST, Codes.TRB_HTTP_BAD_REQUEST]);
  expect(accepted).toEqual([1]);
});

test('a body nested past the encoder stack is refused as TRB_FWD_TOO_DEEP (400)', async () => {
  const refused: string[] = [];
  const config = { ...Object.fromEntries(Object.entries(httpInputSchema.properties).map(([k, v]) => [k, v.default])), port: 0 };
  const input = createHttpInput(config as never, { logger: createLogger('t', 'silent'), onRefused: (code) => refused.push(code) });
  await input.start(async () => {});
  try {
    expect(await post(input.address.port, '/app.web', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`)).toBe(400);
  } finally {
    await input.stop(0);
  }
  expect(refused).toEqual([Codes.TRB_FWD_TOO_DEEP]);
});
