/**
 * The HTTP input, compatible with Fluentd's in_http:
 *
 *   POST /<tag>            body: a JSON object, a JSON array of objects, or the
 *                          same in msgpack (Content-Type application/msgpack or
 *                          application/x-msgpack); form bodies `json=` / `msgpack=`
 *   ?time=<unix seconds>   event time for a single record (fractions kept)
 *
 * In an array, a numeric `time` field of each record is its event time (and
 * removed from the record), as Fluentd does. 200 only once the events are in
 * the buffer; 400 with the reason for a bad body; 413 over the body limit;
 * 503 with Retry-After when the buffer is full under the block policy.
 */
import type { Logger } from '@tributary/core';
import { EventTime, type ForwardChunk, encodeEntry } from '@tributary/forward-protocol';
import Fastify, { type FastifyInstance } from 'fastify';
import { Unpackr } from 'msgpackr';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export interface HttpInputConfig {
  bind: string;
  port: number;
  body_limit_bytes: number;
}

export interface HttpInputHooks {
  consume(chunks: ForwardChunk[]): Promise<void>;
  isFull(): boolean;
  onAccepted(chunks: ForwardChunk[]): void;
  onRefused(code: string): void;
}

class BadRequest extends Error {}

function parseTime(value: unknown, where: string): EventTime {
  const t = typeof value === 'string' ? Number(value) : value;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) throw new BadRequest(`${where} is not a Unix time in seconds`);
  const s = Math.floor(t);
  return new EventTime(s, Math.round((t - s) * 1e9));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function toChunk(tag: string, body: unknown, timeParam: unknown): ForwardChunk {
  if (!tag) throw new BadRequest('the tag (URL path) is empty');
  const entries: Buffer[] = [];
  if (Array.isArray(body)) {
    body.forEach((rec, i) => {
      if (!isRecord(rec)) throw new BadRequest(`element ${i} of the array is not an object`);
      let time = EventTime.now();
      if (rec.time !== undefined) {
        time = parseTime(rec.time, `element ${i}'s "time"`);
        const { time: _dropped, ...rest } = rec;
        rec = rest;
      }
      entries.push(encodeEntry(time, rec));
    });
    if (entries.length === 0) throw new BadRequest('the array is empty');
  } else if (isRecord(body)) {
    entries.push(encodeEntry(timeParam === undefined ? EventTime.now() : parseTime(timeParam, 'the time parameter'), body));
  } else {
    throw new BadRequest('the body is neither an object nor an array of objects');
  }
  return { tag, entries: Buffer.concat(entries), count: entries.length, mode: 'forward' };
}

export async function createHttpInput(config: HttpInputConfig, hooks: HttpInputHooks, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({ bodyLimit: config.body_limit_bytes, logger: false });
  const msgpack = (_req: unknown, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
    try {
      done(null, unpackr.unpack(body));
    } catch (err) {
      done(new BadRequest(`the msgpack body is malformed: ${(err as Error).message}`));
    }
  };
  app.addContentTypeParser(['application/msgpack', 'application/x-msgpack'], { parseAs: 'buffer' }, msgpack);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const form = new URLSearchParams(body as string);
    try {
      if (form.has('json')) done(null, JSON.parse(form.get('json') as string));
      else if (form.has('msgpack')) done(null, unpackr.unpack(Buffer.from(form.get('msgpack') as string, 'latin1')));
      else done(new BadRequest('the form has neither a json nor a msgpack field'));
    } catch (err) {
      done(new BadRequest(`the form body is malformed: ${(err as Error).message}`));
    }
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err instanceof BadRequest ? 400 : (err.statusCode ?? 500);
    const code = status === 413 ? 'TRB_HTTP_TOO_LARGE' : status === 400 ? 'TRB_HTTP_BAD_REQUEST' : 'TRB_HTTP_ERROR';
    hooks.onRefused(code);
    if (status >= 500) logger.error({ code, err: err.message }, `HTTP input failed: ${err.message}`);
    reply.code(status).send({ error: err instanceof BadRequest ? `Bad request: ${err.message}.` : err.message, code });
  });
  app.get('/healthz', async () => 'ok');
  app.post('/*', async (req, reply) => {
    const tag = decodeURIComponent((req.params as { '*': string })['*'] ?? '').replace(/\//g, '.');
    const chunk = toChunk(tag, req.body, (req.query as Record<string, unknown>).time);
    if (hooks.isFull()) {
      hooks.onRefused('TRB_BUF_FULL');
      return reply.code(503).header('retry-after', '1').send({ error: 'The buffer is full; retry later.', code: 'TRB_BUF_FULL' });
    }
    try {
      await hooks.consume([chunk]);
    } catch (err) {
      hooks.onRefused((err as { code?: string }).code ?? 'TRB_HTTP_ERROR');
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: (err as Error).message, code: (err as { code?: string }).code });
    }
    hooks.onAccepted([chunk]);
    return reply.code(200).send('');
  });
  await app.listen({ host: config.bind, port: config.port });
  return app;
}
